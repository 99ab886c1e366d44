# fetch: the raw scans of each dataset (the embedded demo, IXI, HCP; a lab's folder is read in place) and the
# downloaded weights. Downloads are local rules: compute nodes are often offline.
# What each job fetches is planned in mrisr.plan.stages.Fetch.


localrules:
    fetch_ixi_archive,
    fetch_hcp,
    fetch_download,
    fetch_lpips,


rule fetch_demo:
    output:
        t1w=path("raw", kind="T1w"),
        mask=path("raw", kind="mask"),
        dseg=path("raw", kind="dseg"),
    log:
        "results/logs/fetch_demo/{dataset}/sub-{subject}.log",
    benchmark:
        "results/benchmarks/fetch_demo/{dataset}/sub-{subject}.tsv"
    wildcard_constraints:
        dataset=PLAN.fetch.dataset_pattern("demo"),
    conda:
        ENV
    params:
        spacing=PLAN.fetch.demo_spacing,
        transforms=PLAN.fetch.demo_transforms,
        seed=PLAN.fetch.demo_seed,
    shell:
        'mrisr fetch demo --out-dir "$(dirname {output.t1w:q})" --subject {wildcards.subject:q} --seed {params.seed:q}'
        " --spacing {params.spacing:q} --transforms {params.transforms:q} > {log:q} 2>&1"


rule fetch_ixi_archive:
    output:
        path("ixi_archive"),
    log:
        "results/logs/fetch_ixi_archive/{dataset}.log",
    wildcard_constraints:
        dataset=PLAN.fetch.dataset_pattern("ixi"),
    conda:
        ENV
    params:
        url=PLAN.fetch.archive_url,
        checks=PLAN.fetch.archive_checks,
    shell:
        "mrisr fetch download --url {params.url:q} {params.checks} --out {output:q} > {log:q} 2>&1"


for _name in PLAN.fetch.datasets_of("ixi"):

    rule:
        name:
            f"fetch_ixi_{_name}"
        input:
            path("ixi_archive", dataset=_name),
        output:
            PLAN.fetch.ixi_outputs(_name),
        log:
            f"results/logs/fetch_ixi/{_name}.log",
        conda:
            ENV
        params:
            subjects=PLAN.study.subjects(_name),
            out_dir=f"results/fetch/{_name}",
        shell:
            "mrisr fetch ixi --tar {input:q} --subjects {params.subjects:q} --out-dir {params.out_dir:q} > {log:q} 2>&1"


rule fetch_hcp:
    output:
        t1w=path("raw", kind="T1w"),
        mask=path("raw", kind="mask"),
        dseg=path("raw", kind="dseg"),
    log:
        "results/logs/fetch_hcp/{dataset}/sub-{subject}.log",
    wildcard_constraints:
        dataset=PLAN.fetch.dataset_pattern("hcp"),
    conda:
        ENV
    params:
        s3=PLAN.fetch.hcp_options,
    shell:
        'mrisr fetch hcp --subject {wildcards.subject:q} --out-dir "$(dirname {output.t1w:q})" {params.s3} > {log:q} 2>&1'


rule fetch_download:
    output:
        path("download"),
    log:
        "results/logs/fetch_download/{name}.log",
    wildcard_constraints:
        name=r"[^/]+",
    conda:
        ENV
    params:
        url=PLAN.fetch.download_url,
        checks=PLAN.fetch.download_checks,
    shell:
        "mrisr fetch download --url {params.url:q} {params.checks} --out {output:q} > {log:q} 2>&1"


rule fetch_lpips:
    output:
        directory(path("lpips")),
    log:
        "results/logs/fetch_lpips.log",
    conda:
        ENV
    params:
        url=config["lpips"]["url"],
        sha256=config["lpips"]["sha256"],
        size=PLAN.fetch.lpips_size(),
    shell:
        "mrisr fetch lpips --url {params.url:q} --sha256 {params.sha256} {params.size} --out-dir {output:q}"
        " > {log:q} 2>&1"
