# degrade: simulated LR volumes, one folder per named degradation (<name>-noise<sigma>: plus Gaussian noise); and a
# raw (unprepared) scan made into a user's LR scan, for the README's before/after figure.

from mrisr.degrade import parse_degradation

# (degradations entry, added noise σ) of a degradation wildcard
degradation_spec = lambda name: parse_degradation(name, config["degradations"])


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
        method=lambda wc: degradation_spec(wc.degradation)[0]["method"],
        fwhm=lambda wc: degradation_spec(wc.degradation)[0]["blur_fwhm"],
        sigma=lambda wc: degradation_spec(wc.degradation)[1],
        scale=config["scale"],
        seed=config["seed"],
    shell:
        "mrisr degrade --hr {input.hr:q} --out {output:q} --method {params.method} --scale {params.scale:q}"
        " --blur-fwhm {params.fwhm:q} --noise-sigma {params.sigma:q} --noise-seed {params.seed:q} > {log:q} 2>&1"


rule degrade_scan:
    """A raw scan, in scanner units and not prepared, decimated as training's LR: what a user brings."""
    input:
        lambda wildcards: raw_files(wildcards.dataset)[wildcards.subject]["T1w"],
    output:
        path("scan_lr"),
    log:
        "results/logs/degrade/{dataset}/scan/sub-{subject}.log",
    benchmark:
        "results/benchmarks/degrade/{dataset}/scan/sub-{subject}.tsv"
    conda:
        ENV
    params:
        method=config["degradations"][TRAIN_DEGRADATION]["method"],
        fwhm=config["degradations"][TRAIN_DEGRADATION]["blur_fwhm"],
        scale=config["scale"],
        seed=config["seed"],
    shell:
        "mrisr degrade --hr {input:q} --out {output:q} --method {params.method} --scale {params.scale:q}"
        " --blur-fwhm {params.fwhm:q} --noise-sigma 0 --noise-seed {params.seed:q} > {log:q} 2>&1"
