# evaluate: PSNR, SSIM, NRMSE (whole volume and brain), LPIPS on slices, noise estimates; a CSV row per test subject;
# and each trained model with its test-set metrics in its card, the file to apply to one's own scans.


rule evaluate:
    input:
        unpack(PLAN.evaluate.input),
    output:
        path("metrics"),
    log:
        "results/logs/evaluate/{dataset}/{degradation}/{variant}.log",
    benchmark:
        "results/benchmarks/evaluate/{dataset}/{degradation}/{variant}.tsv"
    conda:
        ENV
    threads: config["threads"]
    params:
        files=PLAN.evaluate.file_options,
        lpips=PLAN.evaluate.lpips_options,
    shell:
        "mrisr evaluate {params.files} {params.lpips} --threads {threads} --out {output:q} > {log:q} 2>&1"


rule evaluate_model_card:
    input:
        model=path("model"),
        metrics=path("metrics", degradation=PLAN.study.train_degradation),
    output:
        path("model_card"),
    log:
        "results/logs/evaluate/{dataset}/model_cards/{variant}.log",
    localrule: True
    conda:
        ENV
    params:
        degradation=PLAN.study.train_degradation,
    shell:
        "mrisr model-card {input.model:q} --metrics {input.metrics:q} --degradation {params.degradation:q}"
        " --out {output:q} > {log:q} 2>&1"
