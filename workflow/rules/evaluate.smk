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
        options=PLAN.evaluate.options,
    shell:
        "mrisr evaluate {params.options} --threads {threads} > {log:q} 2>&1"


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
        options=PLAN.evaluate.model_card_options,
    shell:
        "mrisr model-card {params.options} > {log:q} 2>&1"
