# degrade: simulated LR volumes, one folder per named degradation (<name>-noise<sigma>: plus Gaussian noise); and a
# raw (unprepared) scan made into a user's LR scan, for the README's before/after figure.


rule degrade:
    input:
        hr=path("hr", kind="T1w"),
    output:
        path("lr"),
    log:
        "results/logs/degrade/{dataset}/{degradation}/sub-{subject}.log",
    benchmark:
        "results/benchmarks/degrade/{dataset}/{degradation}/sub-{subject}.tsv"
    conda:
        ENV
    params:
        options=PLAN.degrade.options,
    shell:
        "mrisr degrade {params.options} > {log:q} 2>&1"


rule degrade_scan:
    """A raw scan, in scanner units and not prepared, decimated as training's LR: what a user brings."""
    input:
        PLAN.degrade.scan_input,
    output:
        path("scan_lr"),
    log:
        "results/logs/degrade/{dataset}/scan/sub-{subject}.log",
    benchmark:
        "results/benchmarks/degrade/{dataset}/scan/sub-{subject}.tsv"
    conda:
        ENV
    params:
        options=PLAN.degrade.scan_options,
    shell:
        "mrisr degrade {params.options} > {log:q} 2>&1"
