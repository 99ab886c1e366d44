# segment: the SR-augmentation study. Each arm (real, real+sr) is trained once per seed on the training
# subjects, then segments the test subjects' real HR images; papers.smk tabulates and draws the arms.


wildcard_constraints:
    arm=r"real|real\+sr",
    seed=r"\d+",


rule segment_train:
    input:
        unpack(PLAN.segment.train_input),
    output:
        model=path("segment", file="model.pt"),
        log=report(
            path("segment", file="train_log.csv"),
            caption="../report/segment_train_log.rst",
            category="augment",
            subcategory="training",
            labels={"arm": "{arm}", "seed": "{seed}"},
        ),
    log:
        "results/logs/segment_train/{dataset}/{arm}/seed-{seed}.log",
    benchmark:
        "results/benchmarks/segment_train/{dataset}/{arm}/seed-{seed}.tsv"
    priority: 1  # the real arm needs no SR: it starts early, beside training
    conda:
        ENV
    threads: config["threads"]
    resources:
        **PLAN.study.gpu_resources(1),
    params:
        options=PLAN.segment.train_options,
    shell:
        "mrisr segment train {params.options} --threads {threads} > {log:q} 2>&1"


rule segment_evaluate:
    input:
        model=path("segment", file="model.pt"),
        image=PLAN.segment.test_files("T1w"),
        label=PLAN.segment.test_files("dseg"),
    output:
        scores=path("segment", file="scores.csv"),
        dseg=PLAN.segment.test_segmentations(),
    log:
        "results/logs/segment_evaluate/{dataset}/{arm}/seed-{seed}.log",
    benchmark:
        "results/benchmarks/segment_evaluate/{dataset}/{arm}/seed-{seed}.tsv"
    wildcard_constraints:
        dataset=PLAN.study.dataset,
    conda:
        ENV
    threads: config["threads"]
    resources:
        **PLAN.study.gpu_resources(1),
    params:
        options=PLAN.segment.evaluate_options,
    shell:
        "mrisr segment evaluate {params.options} --threads {threads} > {log:q} 2>&1"
