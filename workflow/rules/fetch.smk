# fetch: the raw scans of each dataset (the embedded demo, IXI, HCP; a lab's folder is read in place) and the
# downloaded weights. Downloads are local rules: compute nodes are often offline.
# What each job fetches is planned in mrisr.plan.stages.Fetch.


localrules:
    fetch_ixi_archive,
    fetch_hcp,
    fetch_download,
    fetch_lpips,


# The embedded demo: one job per dataset, its subjects made from the template read once.
for demo_dataset in PLAN.fetch.demo_datasets():

    rule:
        name:
            PLAN.fetch.demo_rule(demo_dataset)
        output:
            PLAN.fetch.demo_outputs(demo_dataset),
        log:
            f"results/logs/fetch_demo/{demo_dataset}.log",
        benchmark:
            f"results/benchmarks/fetch_demo/{demo_dataset}.tsv"
        conda:
            ENV
        params:
            options=PLAN.fetch.demo_options(demo_dataset),
        shell:
            "mrisr fetch demo {params.options} > {log:q} 2>&1"


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
        options=PLAN.fetch.archive_options,
    shell:
        "mrisr fetch download {params.options} > {log:q} 2>&1"


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
            options=PLAN.fetch.ixi_options(_name),
        shell:
            "mrisr fetch ixi {params.options} > {log:q} 2>&1"


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
        options=PLAN.fetch.hcp_options,
    shell:
        "mrisr fetch hcp {params.options} > {log:q} 2>&1"


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
        options=PLAN.fetch.download_options,
    shell:
        "mrisr fetch download {params.options} > {log:q} 2>&1"


rule fetch_lpips:
    output:
        directory(path("lpips")),
    log:
        "results/logs/fetch_lpips.log",
    conda:
        ENV
    params:
        options=PLAN.fetch.lpips_options,
    shell:
        "mrisr fetch lpips {params.options} > {log:q} 2>&1"
