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
        network=PLAN.segment.network(),
        settings=PLAN.segment.settings,
        sr=PLAN.segment.sr_option,
    shell:
        "mrisr segment train --image {input.image:q} --label {input.label:q} {params.sr}"
        ' --network {params.network:q} --settings {params.settings:q} --out-dir "$(dirname {output.model:q})"'
        " --threads {threads} > {log:q} 2>&1"


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
        subjects=PLAN.study.subjects_in("test"),
        roi=config["segmentation"]["patch_size"],
        overlap=config["segmentation"]["overlap"],
        hd95=PLAN.segment.hd95_option(),
    shell:
        "mrisr segment evaluate --model {input.model:q} --subjects {params.subjects:q} --image {input.image:q}"
        " --label {input.label:q} --roi {params.roi:q} --overlap {params.overlap:q} {params.hd95}"
        ' --out-dir "$(dirname {output.scores:q})" --out {output.scores:q} --threads {threads} > {log:q} 2>&1'
