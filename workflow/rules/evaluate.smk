# evaluate: PSNR, SSIM, NRMSE (whole volume and brain), LPIPS on slices, noise estimates; a CSV row per test subject;
# and each trained model with its test-set metrics in its card, the file to apply to one's own scans.

MODEL_CARD_TARGETS = [
    path("model_card", dataset=DATASET, variant=variant)
    for variant in RUN_VARIANTS
    if config["variants"][variant]["kind"] == "gan"
]

# each test subject's file of an entry of PATHS, given the job's wildcards
of_test_subjects = lambda entry, wildcards, **more: [
    path(entry, **{**dict(wildcards.items()), "subject": s, **more}) for s in subjects_in("test", wildcards.dataset)
]
get_evaluate_input = lambda wildcards: {
    "gt": of_test_subjects("hr", wildcards, kind="T1w"),
    "mask": of_test_subjects("hr", wildcards, kind="mask"),
    "lr": of_test_subjects("lr", wildcards),
    "pred": of_test_subjects("sr", wildcards),
    **({"lpips": path("lpips")} if config["lpips"]["enabled"] else {}),
}


rule evaluate:
    input:
        unpack(get_evaluate_input),
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
        subjects=lambda wc: subjects_in("test", wc.dataset),
        lpips=lambda wc, input: (
            f"{option('--lpips-dir', input.lpips)} --lpips-step {config['lpips']['slice_step']}"
            f" --lpips-sha256 {config['lpips']['sha256']}"
            if config["lpips"]["enabled"]
            else ""
        ),
    shell:
        "mrisr evaluate --subjects {params.subjects:q} --gt {input.gt:q} --pred {input.pred:q} --mask {input.mask:q}"
        " --lr {input.lr:q} {params.lpips} --threads {threads} --out {output:q} > {log:q} 2>&1"


rule evaluate_model_card:
    input:
        model=path("model"),
        metrics=path("metrics", degradation=TRAIN_DEGRADATION),
    output:
        path("model_card"),
    log:
        "results/logs/evaluate/{dataset}/model_cards/{variant}.log",
    localrule: True
    conda:
        ENV
    params:
        degradation=TRAIN_DEGRADATION,
    shell:
        "mrisr model-card {input.model:q} --metrics {input.metrics:q} --degradation {params.degradation:q}"
        " --out {output:q} > {log:q} 2>&1"
