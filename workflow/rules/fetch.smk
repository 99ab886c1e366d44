# fetch: the raw scans of each dataset (the embedded demo, IXI, HCP; a lab's folder is read in place) and the
# downloaded weights. Downloads are local rules: compute nodes are often offline.
# Helpers are lambdas and constants: `snakemake --lint` wants functions out of rule files.

DATASETS_BY_SOURCE = {
    source: [name for name, spec in config["datasets"].items() if spec["source"] == source]
    for source in ("demo", "folder", "ixi", "hcp")
}
# a wildcard pattern matching the datasets of one source (none: a pattern that matches nothing)
datasets_of = lambda source: "|".join(DATASETS_BY_SOURCE[source]) or "(?!)"
download_checks = lambda spec: " ".join(
    [option(f"--{key}", spec[key]) for key in ("sha256", "md5", "size") if spec.get(key)]
)
hcp_options = lambda spec: " ".join(
    [option("--bucket", spec["bucket"]), option("--prefix", spec["prefix"])]
    + [option("--endpoint-url", spec["endpoint_url"])] * bool(spec["endpoint_url"])
)
get_demo_seed = lambda wildcards: (
    config["seed"]
    if config["datasets"][wildcards.dataset]["seed"] is None
    else config["datasets"][wildcards.dataset]["seed"]
)


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
        dataset=datasets_of("demo"),
    conda:
        ENV
    params:
        spacing=lambda wc: config["datasets"][wc.dataset]["spacing"],
        transforms=lambda wc: as_json(config["datasets"][wc.dataset]["transforms"]),
        seed=get_demo_seed,
    shell:
        'mrisr fetch demo --out-dir "$(dirname {output.t1w:q})" --subject {wildcards.subject:q} --seed {params.seed:q}'
        " --spacing {params.spacing:q} --transforms {params.transforms:q} > {log:q} 2>&1"


rule fetch_ixi_archive:
    output:
        path("ixi_archive"),
    log:
        "results/logs/fetch_ixi_archive/{dataset}.log",
    wildcard_constraints:
        dataset=datasets_of("ixi"),
    conda:
        ENV
    params:
        url=lambda wc: config["datasets"][wc.dataset]["url"],
        checks=lambda wc: download_checks(config["datasets"][wc.dataset]),
    shell:
        "mrisr fetch download --url {params.url:q} {params.checks} --out {output:q} > {log:q} 2>&1"


for _name in DATASETS_BY_SOURCE["ixi"]:

    rule:
        name:
            f"fetch_ixi_{_name}"
        input:
            path("ixi_archive", dataset=_name),
        output:
            [path("raw", dataset=_name, subject=s, kind=k) for s in subjects(_name) for k in ("T1w", "mask")],
        log:
            f"results/logs/fetch_ixi/{_name}.log",
        conda:
            ENV
        params:
            subjects=subjects(_name),
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
        dataset=datasets_of("hcp"),
    conda:
        ENV
    params:
        s3=lambda wc: hcp_options(config["datasets"][wc.dataset]),
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
        url=lambda wc: config["downloads"][wc.name]["url"],
        checks=lambda wc: download_checks(config["downloads"][wc.name]),
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
        size=f"--size {config['lpips']['size']}" if config["lpips"]["size"] else "",
    shell:
        "mrisr fetch lpips --url {params.url:q} --sha256 {params.sha256} {params.size} --out-dir {output:q}"
        " > {log:q} 2>&1"
