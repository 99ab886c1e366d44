# segment: the SR-augmentation study. Each arm (real, real+sr) is trained once per seed on the training
# subjects, then segments the test subjects' real HR images; a table and a figure compare the arms.


wildcard_constraints:
    arm=r"real|real\+sr",
    seed=r"\d+",


rule segment_train:
    input:
        unpack(segment_train_inputs),
    output:
        model="results/segmentation/{dataset}/{arm}/seed-{seed}/model.pt",
        log=report(
            "results/segmentation/{dataset}/{arm}/seed-{seed}/train_log.csv",
            caption="../report/segment_train_log.rst",
            category="augment",
            subcategory="training",
            labels={"arm": "{arm}", "seed": "{seed}"},
        ),
    params:
        network=as_json(SEGMENTATION["network"]),
        settings=segment_settings,
        sr=lambda wc, input: f"--sr {' '.join(input.sr)}" if wc.arm == "real+sr" else "",
    threads: config["threads"]
    resources:
        gpu=1,
    benchmark:
        "results/benchmarks/segment_train/{dataset}/{arm}/seed-{seed}.tsv"
    log:
        "results/logs/segment_train/{dataset}/{arm}/seed-{seed}.log",
    conda:
        ENV
    shell:
        "mrisr segment-train --image {input.image} --label {input.label} {params.sr}"
        " --network {params.network:q} --settings {params.settings:q} --out-dir $(dirname {output.model})"
        " --threads {threads} > {log} 2>&1"


rule segment_evaluate:
    input:
        model="results/segmentation/{dataset}/{arm}/seed-{seed}/model.pt",
        image=[hr_path(DATASET, s) for s in subjects_in("test")],
        label=[hr_path(DATASET, s, "dseg") for s in subjects_in("test")],
    output:
        scores="results/segmentation/{dataset}/{arm}/seed-{seed}/scores.csv",
        dseg=[f"results/segmentation/{{dataset}}/{{arm}}/seed-{{seed}}/sub-{s}_dseg.nii.gz" for s in subjects_in("test")],
    wildcard_constraints:
        dataset=DATASET,
    params:
        subjects=subjects_in("test"),
        roi=SEGMENTATION["patch_size"],
        overlap=SEGMENTATION["overlap"],
        hd95="--hd95" if SEGMENTATION["hd95"] else "",
    threads: config["threads"]
    resources:
        gpu=1,
    benchmark:
        "results/benchmarks/segment_evaluate/{dataset}/{arm}/seed-{seed}.tsv"
    log:
        "results/logs/segment_evaluate/{dataset}/{arm}/seed-{seed}.log",
    conda:
        ENV
    shell:
        "mrisr segment-evaluate --model {input.model} --subjects {params.subjects} --image {input.image}"
        " --label {input.label} --roi {params.roi} --overlap {params.overlap} {params.hd95}"
        " --out-dir $(dirname {output.scores}) --out {output.scores} --threads {threads} > {log} 2>&1"


rule segmentation_table:
    input:
        **segmentation_scores(),
    output:
        csv=report(
            "results/tables/augment/segmentation.csv",
            caption="../report/segmentation_table.rst",
            category="augment",
            subcategory="table",
            labels={"name": "segmentation"},
        ),
        md="results/tables/augment/segmentation.md",
    params:
        scores=lambda wc, input: [f"{arm}={path}" for arm in SEG_ARMS for path in input[arm]],
        n=len(subjects_in("test")),
        n_train=len(subjects_in("train")),
        sr_variant=SEGMENTATION["sr_variant"],
        degradation=SEG_DEGRADATION,
    benchmark:
        "results/benchmarks/papers/augment/segmentation_table.tsv"
    log:
        "results/logs/papers/augment/segmentation_table.log",
    conda:
        ENV
    shell:
        "mrisr segment-table --scores {params.scores} --out-csv {output.csv} --out-md {output.md} > {log} 2>&1"


rule segmentation_figure:
    input:
        image=hr_path(DATASET, figure_subject()),
        label=hr_path(DATASET, figure_subject(), "dseg"),
        mask=hr_path(DATASET, figure_subject(), "mask"),
        arms=[f"{seg_dir(arm, SEGMENTATION['seeds'][0])}/sub-{figure_subject()}_dseg.nii.gz" for arm in SEG_ARMS],
    output:
        png=report(
            "results/figures/augment/segmentation.png",
            caption="../report/segmentation_figure.rst",
            category="augment",
            subcategory="figure",
            labels={"name": "segmentation"},
        ),
        pdf="results/figures/augment/segmentation.pdf",
    params:
        arms=lambda wc, input: [f"{arm}={path}" for arm, path in zip(SEG_ARMS, input.arms)],
        classes=SEGMENTATION["classes"],
        seed=SEGMENTATION["seeds"][0],
        subject=figure_subject(),
        title=f"sub-{figure_subject()}, seed {SEGMENTATION['seeds'][0]}",
    benchmark:
        "results/benchmarks/papers/augment/segmentation_figure.tsv"
    log:
        "results/logs/papers/augment/segmentation_figure.log",
    conda:
        ENV
    shell:
        "mrisr figure-segmentation --image {input.image} --label {input.label} --mask {input.mask}"
        " --arm {params.arms} --classes {params.classes} --title {params.title:q} --out {output.png} > {log} 2>&1"
