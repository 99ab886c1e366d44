# Config validation and the helpers that turn config into file lists.

import copy
import json
from pathlib import Path

from mrisr import config as mrisr_config
from mrisr.data.demo import demo_subject_ids
from mrisr.data.prepare import make_splits

mrisr_config.validate(config, Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml")

DATASET = config["dataset"]
ENV = "../../envs/mrisr.yaml"
TRAIN_DEGRADATION = config["train"]["degradation"]
RUN_VARIANTS = config["run_variants"] or list(config["variants"])


wildcard_constraints:
    dataset=r"[A-Za-z0-9_-]+",
    subject=r"[A-Za-z0-9]+",
    variant=r"[A-Za-z0-9_-]+",
    degradation=r"[A-Za-z0-9_-]+",


def subjects(dataset=DATASET):
    return demo_subject_ids(config["datasets"][dataset]["subjects"])


def splits(dataset=DATASET):
    prep = config["prepare"]
    return make_splits(subjects(dataset), prep["val"], prep["test"], config["seed"])


def subjects_in(split, dataset=DATASET):
    return [s for s, part in splits(dataset).items() if part == split]


def variant_label(variant):
    return config["variants"][variant].get("label", variant)


def hr_path(dataset, subject, kind="T1w"):
    return f"results/data/{dataset}/sub-{subject}/sub-{subject}_{kind}.nii.gz"


def sr_path(dataset, degradation, variant, subject):
    return f"results/sr/{dataset}/{degradation}/{variant}/sub-{subject}_T1w.nii.gz"


def sr_targets():
    return [
        sr_path(DATASET, degradation, variant, subject)
        for degradation in config["degradations"]
        for variant in RUN_VARIANTS
        for subject in subjects_in("test")
    ]


def data_targets():
    return [f"results/data/{DATASET}/splits.tsv"] + [
        hr_path(DATASET, s, kind) for s in subjects() for kind in ("T1w", "mask", "dseg")
    ]


def figure_subject():
    return config["figures"]["subject"] or subjects_in("test")[0]


def paper_targets():
    return [
        "results/tables/threeplayer/method_comparison.csv",
        "results/tables/threeplayer/method_comparison.md",
        "results/figures/threeplayer/sr_comparison.png",
    ]


def train_settings(wildcards):
    train = config["train"]
    return as_json(
        {
            "steps": train["steps"],
            "batch_size": train["batch_size"],
            "patch_size": train["patch_size"],
            "checkpoint_every": train["checkpoint_every"],
            "warmup_steps": train["warmup_steps"],
            "precision": train["precision"],
            "degradation": config["degradations"][train["degradation"]],
            "scale": config["scale"],
            "seed": config["seed"],
        }
    )


def super_resolve_inputs(wildcards):
    inputs = {
        "lr": f"results/lr/{wildcards.dataset}/{wildcards.degradation}/sub-{wildcards.subject}_T1w.nii.gz",
        "reference": hr_path(wildcards.dataset, wildcards.subject),
    }
    if config["variants"][wildcards.variant]["kind"] == "gan":
        inputs["model"] = f"results/models/{wildcards.dataset}/{wildcards.variant}/model.pt"
    return inputs


def super_resolve_method(wildcards, input):
    spec = config["variants"][wildcards.variant]
    if spec["kind"] == "gan":
        return f"--model {input.model}"
    return f"--interpolate {spec['mode']} --scale {config['scale']}"


def weights_path(name):
    """A downloads entry's local file, or the path itself."""
    return f"results/downloads/{name}" if name in config["downloads"] else name


def variant_for_training(variant):
    spec = copy.deepcopy(config["variants"][variant])
    weights = spec.get("feature_extractor", {}).get("weights")
    if weights:
        spec["feature_extractor"]["weights"] = weights_path(weights)
    return spec


def train_inputs(wildcards):
    inputs = {"hr": [hr_path(wildcards.dataset, s) for s in subjects_in("train", wildcards.dataset)]}
    weights = config["variants"][wildcards.variant].get("feature_extractor", {}).get("weights")
    if weights and config["variants"][wildcards.variant]["losses"]["feature"] > 0:
        inputs["weights"] = weights_path(weights)
    return inputs


def as_json(value):
    return json.dumps(value, sort_keys=True)
