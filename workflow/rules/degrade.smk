# degrade: simulated LR volumes, one folder per named degradation (<name>-noise<sigma>: plus Gaussian noise).

from snakemake.exceptions import WorkflowError


def degradation_spec(name):
    """(degradations entry, added noise σ) of a degradation wildcard."""
    if name in config["degradations"]:
        return config["degradations"][name], 0.0
    base, sep, sigma = name.rpartition("-noise")
    if sep and base in config["degradations"]:
        return config["degradations"][base], float(sigma)
    raise WorkflowError(f"unknown degradation '{name}': not an entry of degradations nor <entry>-noise<sigma>")


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
