# degrade: simulated LR volumes, one folder per named degradation (<name>-noise<sigma>: plus Gaussian noise).

from mrisr.degrade import parse_degradation

# (degradations entry, added noise σ) of a degradation wildcard
degradation_spec = lambda name: parse_degradation(name, config["degradations"])


rule degrade:
    input:
        hr=path("hr", kind="T1w"),
    output:
        path("lr"),
    params:
        method=lambda wc: degradation_spec(wc.degradation)[0]["method"],
        fwhm=lambda wc: degradation_spec(wc.degradation)[0]["blur_fwhm"],
        sigma=lambda wc: degradation_spec(wc.degradation)[1],
        scale=config["scale"],
        seed=config["seed"],
    benchmark:
        "results/benchmarks/degrade/{dataset}/{degradation}/sub-{subject}.tsv"
    log:
        "results/logs/degrade/{dataset}/{degradation}/sub-{subject}.log",
    conda:
        ENV
    shell:
        "mrisr degrade --hr {input.hr} --out {output} --method {params.method} --scale {params.scale}"
        " --blur-fwhm {params.fwhm} --noise-sigma {params.sigma} --noise-seed {params.seed} > {log} 2>&1"
