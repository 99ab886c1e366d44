# train: one job per GAN variant; resumes from checkpoint.pt (kept outside the outputs) after a stop.

import copy


def weights_path(name):
    """A `downloads` entry's local file, or the path itself."""
    return path("download", name=name) if name in config["downloads"] else name


def train_inputs(wildcards):
    inputs = {"hr": [path("hr", dataset=wildcards.dataset, subject=s, kind="T1w") for s in subjects_in("train", wildcards.dataset)]}
    spec = config["variants"][wildcards.variant]
    weights = spec.get("feature_extractor", {}).get("weights")
    if weights and spec["losses"]["feature"] > 0:
        inputs["weights"] = weights_path(weights)
    return inputs


def train_variant(wildcards):
    """The variant's config, its feature-extractor weights given as the local file."""
    spec = copy.deepcopy(config["variants"][wildcards.variant])
    weights = spec.get("feature_extractor", {}).get("weights")
    if weights:
        spec["feature_extractor"]["weights"] = weights_path(weights)
    return as_json(spec)


def train_settings(wildcards):
    train = config["train"]
    keys = ("steps", "batch_size", "patch_size", "checkpoint_every", "warmup_steps", "precision",
            "shared_discriminator_pass")
    return as_json({**{k: train[k] for k in keys}, "degradation": config["degradations"][train["degradation"]],
                    "scale": config["scale"], "seed": config["seed"]})


rule train:
    input:
        unpack(train_inputs),
    output:
        model=path("model"),
        log=report(
            path("train_log"),
            caption="../report/train_log.rst",
            category="Training",
            subcategory="{variant}",
        ),
    params:
        variant=train_variant,
        settings=train_settings,
        launch=(
            f"torchrun --standalone --nproc_per_node {config['train']['gpus']} -m mrisr"
            if config["train"]["gpus"] > 1
            else "mrisr"
        ),
    threads: config["threads"]
    resources:
        gpu=config["train"]["gpus"],
    benchmark:
        "results/benchmarks/train/{dataset}/{variant}.tsv"
    log:
        "results/logs/train/{dataset}/{variant}.log",
    conda:
        ENV
    shell:
        "{params.launch} train --hr {input.hr} --variant {params.variant:q} --settings {params.settings:q}"
        " --out-dir $(dirname {output.model}) --threads {threads} > {log} 2>&1"
