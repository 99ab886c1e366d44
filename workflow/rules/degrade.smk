# degrade: simulated LR volumes, one folder per named degradation.


rule degrade:
    input:
        hr="results/data/{dataset}/sub-{subject}/sub-{subject}_T1w.nii.gz",
    output:
        "results/lr/{dataset}/{degradation}/sub-{subject}_T1w.nii.gz",
    params:
        method=lambda wc: config["degradations"][wc.degradation]["method"],
        fwhm=lambda wc: config["degradations"][wc.degradation]["blur_fwhm"],
        scale=config["scale"],
    benchmark:
        "results/benchmarks/degrade/{dataset}/{degradation}/sub-{subject}.tsv",
    log:
        "results/logs/degrade/{dataset}/{degradation}/sub-{subject}.log",
    conda:
        ENV
    shell:
        "mrisr degrade --hr {input.hr} --out {output} --method {params.method} --scale {params.scale}"
        " --blur-fwhm {params.fwhm} > {log} 2>&1"
