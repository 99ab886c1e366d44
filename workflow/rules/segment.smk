# segment: the SR-augmentation study. Each arm (real, real+sr) is trained once per seed on the training
# subjects, then segments the test subjects' real HR images; papers.smk tabulates and draws the arms.

from snakemake.exceptions import WorkflowError

SEGMENTATION = config["segmentation"]
SEGMENTATION_ARMS = ["real", "real+sr"]
SEGMENTATION_DEGRADATION = SEGMENTATION["degradation"] or TRAIN_DEGRADATION
# the study runs by default when the dataset has label maps; asked for without them, a clear stop
SEGMENTATION_RUNS = SEGMENTATION["enabled"] is not False and labelled(DATASET)
if SEGMENTATION["enabled"] and not labelled(DATASET):
    raise WorkflowError(
        f"segmentation: dataset '{DATASET}' has no label maps (sub-<id>_dseg), which the SR-augmentation "
        "study trains on. Fix: set segmentation.enabled: false (or null), or give the dataset label maps"
    )
SEGMENT_KEYS = ("steps", "batch_size", "patch_size", "lr", "classes", "sr_fraction", "checkpoint_every")
of_training_subjects = lambda entry, wildcards, **more: [
    path(entry, dataset=wildcards.dataset, subject=s, **more) for s in subjects_in("train", wildcards.dataset)
]
get_segment_train_input = lambda wildcards: {
    "image": of_training_subjects("hr", wildcards, kind="T1w"),
    "label": of_training_subjects("hr", wildcards, kind="dseg"),
    **(
        {
            "sr": of_training_subjects(
                "sr", wildcards, degradation=SEGMENTATION_DEGRADATION, variant=SEGMENTATION["sr_variant"]
            )
        }
        if wildcards.arm == "real+sr"
        else {}
    ),
}
get_segment_settings = lambda wildcards: as_json(
    {
        **{k: SEGMENTATION[k] for k in SEGMENT_KEYS},
        "seed": int(wildcards.seed),
        "precision": config["train"]["precision"],
    }
)


wildcard_constraints:
    arm=r"real|real\+sr",
    seed=r"\d+",


rule segment_train:
    input:
        unpack(get_segment_train_input),
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
        **gpu_resources(1),
    params:
        network=as_json(SEGMENTATION["network"]),
        settings=get_segment_settings,
        sr=lambda wc, input: option("--sr", *input.sr) if wc.arm == "real+sr" else "",
    shell:
        "mrisr segment train --image {input.image:q} --label {input.label:q} {params.sr}"
        ' --network {params.network:q} --settings {params.settings:q} --out-dir "$(dirname {output.model:q})"'
        " --threads {threads} > {log:q} 2>&1"


rule segment_evaluate:
    input:
        model=path("segment", file="model.pt"),
        image=[path("hr", dataset=DATASET, subject=s, kind="T1w") for s in subjects_in("test")],
        label=[path("hr", dataset=DATASET, subject=s, kind="dseg") for s in subjects_in("test")],
    output:
        scores=path("segment", file="scores.csv"),
        dseg=[path("segment", file=f"sub-{s}_dseg.nii.gz") for s in subjects_in("test")],
    log:
        "results/logs/segment_evaluate/{dataset}/{arm}/seed-{seed}.log",
    benchmark:
        "results/benchmarks/segment_evaluate/{dataset}/{arm}/seed-{seed}.tsv"
    wildcard_constraints:
        dataset=DATASET,
    conda:
        ENV
    threads: config["threads"]
    resources:
        **gpu_resources(1),
    params:
        subjects=subjects_in("test"),
        roi=SEGMENTATION["patch_size"],
        overlap=SEGMENTATION["overlap"],
        hd95="--hd95" if SEGMENTATION["hd95"] else "",
    shell:
        "mrisr segment evaluate --model {input.model:q} --subjects {params.subjects:q} --image {input.image:q}"
        " --label {input.label:q} --roi {params.roi:q} --overlap {params.overlap:q} {params.hd95}"
        ' --out-dir "$(dirname {output.scores:q})" --out {output.scores:q} --threads {threads} > {log:q} 2>&1'
