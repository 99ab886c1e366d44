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
        degradation=PLAN.degrade.degradation,
        sigma=PLAN.degrade.noise_sigma,
        scale=PLAN.degrade.scale,
        seed=config["seed"],
    shell:
        "mrisr degrade --hr {input.hr:q} --out {output:q} --degradation {params.degradation:q} --scale {params.scale:q}"
        " --noise-sigma {params.sigma:q} --noise-seed {params.seed:q} > {log:q} 2>&1"


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
        degradation=PLAN.degrade.scan_degradation(),
        scale=PLAN.study.scale_text,
        seed=config["seed"],
    shell:
        "mrisr degrade --hr {input:q} --out {output:q} --degradation {params.degradation:q} --scale {params.scale:q}"
        " --noise-sigma 0 --noise-seed {params.seed:q} > {log:q} 2>&1"
