# train: one job per GAN variant, from scratch or from its pretrained generator (pretrain.smk); resumes from
# checkpoint.pt (kept outside the outputs) after a stop.

TRAIN_KEYS = (
    "steps",
    "batch_size",
    "patch_size",
    "checkpoint_every",
    "precision",
    "shared_discriminator_pass",
    "relativistic_mean",
)
TRAIN_SETTINGS = as_json(
    {
        **{k: config["train"][k] for k in TRAIN_KEYS},
        "degradation": config["degradations"][TRAIN_DEGRADATION],
        "scale": config["scale"],
        "seed": config["seed"],
    }
)
# the feature extractor's weights: a `downloads` entry's local file, or the path itself (None: random start)
weights_of = lambda variant: config["variants"][variant].get("feature_extractor", {}).get("weights")
weights_path = lambda name: path("download", name=name) if name in config["downloads"] else name
get_train_input = lambda wildcards: {
    "hr": [
        path("hr", dataset=wildcards.dataset, subject=s, kind="T1w") for s in subjects_in("train", wildcards.dataset)
    ],
    **(
        {"start": path("pretrained", dataset=wildcards.dataset, generator=variant_generator_key(wildcards.variant))}
        if config["variants"][wildcards.variant]["start"] == "pretrained"
        else {}
    ),
    **(
        {"weights": weights_path(weights_of(wildcards.variant))}
        if weights_of(wildcards.variant) and config["variants"][wildcards.variant]["losses"]["feature"] > 0
        else {}
    ),
}
# the variant's config, its feature-extractor weights given as the local file
get_train_variant = lambda wildcards: as_json(
    {
        **config["variants"][wildcards.variant],
        **(
            {
                "feature_extractor": {
                    **config["variants"][wildcards.variant]["feature_extractor"],
                    "weights": weights_path(weights_of(wildcards.variant)),
                }
            }
            if weights_of(wildcards.variant)
            else {}
        ),
    }
)

# what the model card records of the data: the variant, the dataset, the training subjects, prepare's settings
get_train_provenance = lambda wildcards: as_json(
    {
        "variant": wildcards.variant,
        "dataset": wildcards.dataset,
        "subjects": subjects_in("train", wildcards.dataset),
        "preprocessing": {k: config["prepare"][k] for k in ("crop", "margin", "normalise")},
    }
)


rule train:
    input:
        unpack(get_train_input),
    output:
        model=path("model"),
        log=report(
            path("train_log"),
            caption="../report/train_log.rst",
            category="Training",
            subcategory="{variant}",
        ),
    log:
        "results/logs/train/{dataset}/{variant}.log",
    benchmark:
        "results/benchmarks/train/{dataset}/{variant}.tsv"
    priority: 2  # long jobs first, so that short ones fill the other cores at the end
    conda:
        ENV
    threads: config["threads"]
    resources:
        **gpu_resources(config["train"]["gpus"]),
    params:
        variant=get_train_variant,
        settings=TRAIN_SETTINGS,
        provenance=get_train_provenance,
        start=lambda wildcards, input: option("--start", input.start) if "start" in input.keys() else "",
        processes=config["train"]["gpus"],
    shell:
        "mrisr train --hr {input.hr:q} --variant {params.variant:q} --settings {params.settings:q}"
        " --provenance {params.provenance:q} {params.start}"
        ' --out-dir "$(dirname {output.model:q})" --threads {threads} --processes {params.processes} > {log:q} 2>&1'
