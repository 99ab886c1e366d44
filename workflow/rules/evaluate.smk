# evaluate: PSNR, SSIM, NRMSE on the whole volume and in the brain, one CSV row per test subject.


rule evaluate:
    input:
        gt=lambda wc: [hr_path(wc.dataset, s) for s in subjects_in("test", wc.dataset)],
        mask=lambda wc: [hr_path(wc.dataset, s, "mask") for s in subjects_in("test", wc.dataset)],
        pred=lambda wc: [
            sr_path(wc.dataset, wc.degradation, wc.variant, s) for s in subjects_in("test", wc.dataset)
        ],
    output:
        "results/metrics/{dataset}/{degradation}/{variant}.csv",
    params:
        subjects=lambda wc: subjects_in("test", wc.dataset),
    benchmark:
        "results/benchmarks/evaluate/{dataset}/{degradation}/{variant}.tsv",
    log:
        "results/logs/evaluate/{dataset}/{degradation}/{variant}.log",
    conda:
        ENV
    shell:
        "mrisr evaluate --subjects {params.subjects} --gt {input.gt} --pred {input.pred} --mask {input.mask}"
        " --out {output} > {log} 2>&1"
