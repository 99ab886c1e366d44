# evaluate: PSNR, SSIM, NRMSE (whole volume and brain), LPIPS on slices, noise estimates; a CSV row per test subject.


localrules:
    lpips_backbone,


rule lpips_backbone:
    output:
        directory("results/downloads/lpips"),
    params:
        url=config["lpips"]["url"],
        sha256=config["lpips"]["sha256"],
        size=f"--size {config['lpips']['size']}" if config["lpips"]["size"] else "",
    log:
        "results/logs/download/lpips.log",
    conda:
        ENV
    shell:
        "mrisr lpips-backbone --url {params.url:q} --sha256 {params.sha256} {params.size} --out-dir {output}"
        " > {log} 2>&1"


rule evaluate:
    input:
        unpack(evaluate_inputs),
    output:
        "results/metrics/{dataset}/{degradation}/{variant}.csv",
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
