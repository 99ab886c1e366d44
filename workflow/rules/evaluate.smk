# evaluate: PSNR, SSIM, NRMSE (whole volume and brain), LPIPS on slices, noise estimates; a CSV row per test subject.


def evaluate_inputs(wildcards):
    test = subjects_in("test", wildcards.dataset)
    given = dict(dataset=wildcards.dataset, degradation=wildcards.degradation, variant=wildcards.variant)
    inputs = {
        "gt": [path("hr", dataset=wildcards.dataset, subject=s, kind="T1w") for s in test],
        "mask": [path("hr", dataset=wildcards.dataset, subject=s, kind="mask") for s in test],
        "lr": [path("lr", subject=s, **given) for s in test],
        "pred": [path("sr", subject=s, **given) for s in test],
    }
    if config["lpips"]["enabled"]:
        inputs["lpips"] = path("lpips")
    return inputs


rule evaluate:
    input:
        unpack(evaluate_inputs),
    output:
        path("metrics"),
    params:
        subjects=lambda wc: subjects_in("test", wc.dataset),
        lpips=lambda wc, input: (
            f"--lpips-dir {input.lpips} --lpips-step {config['lpips']['slice_step']}"
            if config["lpips"]["enabled"]
            else ""
        ),
    threads: config["threads"]
    benchmark:
        "results/benchmarks/evaluate/{dataset}/{degradation}/{variant}.tsv"
    log:
        "results/logs/evaluate/{dataset}/{degradation}/{variant}.log",
    conda:
        ENV
    shell:
        "mrisr evaluate --subjects {params.subjects} --gt {input.gt} --pred {input.pred} --mask {input.mask}"
        " --lr {input.lr} {params.lpips} --threads {threads} --out {output} > {log} 2>&1"
