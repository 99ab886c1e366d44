# Config validation and the helpers that turn config into file lists.

import copy
import functools
import json
from pathlib import Path

from snakemake.exceptions import WorkflowError

from mrisr import config as mrisr_config
from mrisr.data import sources
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
    degradation=r"[A-Za-z0-9_.-]+",


for _spec in config["datasets"].values():
    # a relative subject list is read from the working directory, else from the workflow's own folder
    _tsv = _spec.get("subjects_tsv")
    if _tsv and not Path(_tsv).is_absolute() and not Path(_tsv).exists():
        _spec["subjects_tsv"] = str(Path(workflow.basedir) / _tsv)


DATASETS_BY_SOURCE = {
    source: [name for name, spec in config["datasets"].items() if spec["source"] == source]
    for source in ("demo", "folder", "ixi", "hcp")
}


def datasets_of(source):
    """A wildcard pattern matching the datasets of one source (none: a pattern that matches nothing)."""
    return "|".join(DATASETS_BY_SOURCE[source]) or "(?!)"


def download_checks(spec):
    checks = f"--sha256 {spec['sha256']}" if spec["sha256"] else ""
    return checks + (f" --size {spec['size']}" if spec["size"] else "")


def hcp_options(spec):
    endpoint = f" --endpoint-url {spec['endpoint_url']}" if spec["endpoint_url"] else ""
    return f"--bucket {spec['bucket']} --prefix {spec['prefix']}{endpoint}"


@functools.cache
def raw_files(dataset=DATASET):
    return sources.raw_files(dataset, config["datasets"][dataset])


def subjects(dataset=DATASET):
    return list(raw_files(dataset))


def labelled(dataset=DATASET):
    return all("dseg" in files for files in raw_files(dataset).values())


def raw_inputs(wildcards):
    return raw_files(wildcards.dataset)[wildcards.subject]


def raw_path(dataset, subject, kind):
    return sources.raw_path(dataset, config["datasets"][dataset], subject, kind)


USED_DATASETS = [DATASET] + [
    d for d in [config["papers"]["threeplayer"]["out_of_sample"]] if d and d != DATASET
]
LABELLED_PATTERN = "|".join(d for d in USED_DATASETS if labelled(d)) or "(?!)"
UNLABELLED_PATTERN = "|".join(d for d in USED_DATASETS if not labelled(d)) or "(?!)"


def splits(dataset=DATASET):
    """The training dataset is split; any other dataset (out-of-sample) is test data only."""
    if dataset != DATASET:
        return {s: "test" for s in subjects(dataset)}
    prep = config["prepare"]
    return make_splits(subjects(dataset), prep["val"], prep["test"], config["seed"])


def subjects_in(split, dataset=DATASET):
    return [s for s, part in splits(dataset).items() if part == split]


def variant_label(variant):
    return config["variants"][variant].get("label", variant)


def hr_path(dataset, subject, kind="T1w"):
    return f"results/data/{dataset}/sub-{subject}/sub-{subject}_{kind}.nii.gz"


def lr_path(dataset, degradation, subject):
    return f"results/lr/{dataset}/{degradation}/sub-{subject}_T1w.nii.gz"


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
        hr_path(DATASET, s, kind)
        for s in subjects()
        for kind in ("T1w", "mask", "dseg")
        if kind != "dseg" or labelled()
    ]


def figure_subject():
    return config["figures"]["subject"] or subjects_in("test")[0]


PAPERS = config["papers"]
OUT_OF_SAMPLE = PAPERS["threeplayer"]["out_of_sample"]


def in_run(names):
    """The named variants that this run trains, in the paper's order."""
    return [n for n in names if n in RUN_VARIANTS]


def reference(paper, names):
    ref = PAPERS[paper]["reference"]
    return ref if ref in names else None


def noise_degradation(sigma):
    """The LR set of the noise experiment at ``sigma``: the training degradation plus Gaussian noise."""
    return TRAIN_DEGRADATION if sigma == 0 else f"{TRAIN_DEGRADATION}-noise{sigma:g}"


def degradation_spec(name):
    """(degradations entry, added noise σ) of a degradation wildcard."""
    if name in config["degradations"]:
        return config["degradations"][name], 0.0
    base, sep, sigma = name.rpartition("-noise")
    if sep and base in config["degradations"]:
        return config["degradations"][base], float(sigma)
    raise WorkflowError(f"unknown degradation '{name}': not an entry of degradations nor <entry>-noise<sigma>")


#: Tables: paper -> name -> (dataset, variants). Each is results/tables/{paper}/{name}.csv and .md.
TABLES = {
    "threeplayer": {
        "method_comparison": (DATASET, in_run(PAPERS["threeplayer"]["methods"])),
        "ablation": (DATASET, in_run(PAPERS["threeplayer"]["ablations"])),
    },
    "disgan": {
        "method_comparison": (DATASET, in_run(PAPERS["disgan"]["methods"])),
        "ablation": (DATASET, in_run(PAPERS["disgan"]["ablations"])),
    },
}
if OUT_OF_SAMPLE:
    TABLES["threeplayer"]["method_comparison_out_of_sample"] = (
        OUT_OF_SAMPLE,
        in_run(PAPERS["threeplayer"]["methods"]),
    )


def metrics_path(dataset, degradation, variant):
    return f"results/metrics/{dataset}/{degradation}/{variant}.csv"


def table_inputs(wildcards):
    dataset, variants = TABLES[wildcards.paper][wildcards.table]
    return [metrics_path(dataset, TRAIN_DEGRADATION, v) for v in variants]


def gan_variants(names):
    return [n for n in names if config["variants"][n]["kind"] == "gan"]


def paper_targets():
    tables = [
        f"results/tables/{paper}/{name}.{ext}"
        for paper, names in TABLES.items()
        for name, (_, variants) in names.items()
        if variants
        for ext in ("csv", "md")
    ]
    figures = [
        f"results/figures/{paper}/sr_comparison.png"
        for paper in ("threeplayer", "disgan")
        if in_run(PAPERS[paper]["methods"])
    ]
    if gan_variants(in_run(PAPERS["threeplayer"]["ablations"])):
        figures.append("results/figures/threeplayer/discrepancy.png")
    if in_run(PAPERS["threeplayer"]["methods"]):
        figures.append("results/figures/threeplayer/zoom_profile.png")
    if in_run(PAPERS["disgan"]["methods"]):
        tables += [f"results/tables/disgan/noise.{ext}" for ext in ("csv", "md")]
        figures.append("results/figures/disgan/noise.png")
    if gan_variants(in_run([PAPERS["disgan"]["reference"]])):
        figures.append("results/figures/disgan/stripes.png")
    return tables + figures


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
            "shared_discriminator_pass": train["shared_discriminator_pass"],
            "degradation": config["degradations"][train["degradation"]],
            "scale": config["scale"],
            "seed": config["seed"],
        }
    )


def super_resolve_inputs(wildcards):
    inputs = {
        "lr": lr_path(wildcards.dataset, wildcards.degradation, wildcards.subject),
        "reference": hr_path(wildcards.dataset, wildcards.subject),
    }
    if config["variants"][wildcards.variant]["kind"] == "gan":
        inputs["model"] = f"results/models/{DATASET}/{wildcards.variant}/model.pt"
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


def evaluate_inputs(wildcards):
    test = subjects_in("test", wildcards.dataset)
    inputs = {
        "gt": [hr_path(wildcards.dataset, s) for s in test],
        "mask": [hr_path(wildcards.dataset, s, "mask") for s in test],
        "lr": [lr_path(wildcards.dataset, wildcards.degradation, s) for s in test],
        "pred": [sr_path(wildcards.dataset, wildcards.degradation, wildcards.variant, s) for s in test],
    }
    if config["lpips"]["enabled"]:
        inputs["lpips"] = "results/downloads/lpips"
    return inputs


def table_dataset(wildcards):
    return TABLES[wildcards.paper][wildcards.table][0]


def table_variants(wildcards):
    return TABLES[wildcards.paper][wildcards.table][1]


NOISE_SIGMAS = PAPERS["disgan"]["noise_sigmas"]
NOISE_METHODS = in_run(PAPERS["disgan"]["methods"])


def sr_figure_inputs(wildcards):
    subject = figure_subject()
    return {
        "lr": lr_path(DATASET, TRAIN_DEGRADATION, subject),
        "sr": [sr_path(DATASET, TRAIN_DEGRADATION, v, subject) for v in in_run(PAPERS[wildcards.paper]["methods"])],
        "gt": hr_path(DATASET, subject),
        "mask": hr_path(DATASET, subject, "mask"),
    }


def sr_panels(wildcards, input):
    methods = in_run(PAPERS[wildcards.paper]["methods"])
    return (
        [f"LR={input.lr}"]
        + [f"{variant_label(v)}={p}" for v, p in zip(methods, input.sr)]
        + [f"GT={input.gt}"]
    )


FIGURE_TITLE = f"sub-{figure_subject()}, {TRAIN_DEGRADATION} x{config['scale']}"


DISCREPANCY_VARIANTS = gan_variants(in_run(PAPERS["threeplayer"]["ablations"]))


STRIPES_VARIANT = PAPERS["disgan"]["reference"]


SEGMENTATION = config["segmentation"]
SEG_ARMS = ["real", "real+sr"]
SEG_DEGRADATION = SEGMENTATION["degradation"] or TRAIN_DEGRADATION


def segmentation_runs():
    """Whether the study runs: by default when the dataset has label maps; asked for without them, a clear stop."""
    if SEGMENTATION["enabled"] is False:
        return False
    if not labelled(DATASET):
        if SEGMENTATION["enabled"]:
            raise WorkflowError(
                f"segmentation: dataset '{DATASET}' has no label maps (sub-<id>_dseg), which the SR-augmentation "
                "study trains on. Fix: set segmentation.enabled: false (or null), or give the dataset label maps"
            )
        return False
    return True


def seg_dir(arm, seed, dataset=DATASET):
    return f"results/segmentation/{dataset}/{arm}/seed-{seed}"


def segment_train_inputs(wildcards):
    train = subjects_in("train", wildcards.dataset)
    inputs = {
        "image": [hr_path(wildcards.dataset, s) for s in train],
        "label": [hr_path(wildcards.dataset, s, "dseg") for s in train],
    }
    if wildcards.arm == "real+sr":
        inputs["sr"] = [sr_path(wildcards.dataset, SEG_DEGRADATION, SEGMENTATION["sr_variant"], s) for s in train]
    return inputs


def segment_settings(wildcards):
    seg = SEGMENTATION
    return as_json(
        {
            "steps": seg["steps"],
            "batch_size": seg["batch_size"],
            "patch_size": seg["patch_size"],
            "lr": seg["lr"],
            "seed": int(wildcards.seed),
            "classes": seg["classes"],
            "sr_fraction": seg["sr_fraction"],
            "checkpoint_every": seg["checkpoint_every"],
            "precision": config["train"]["precision"],
        }
    )


def segmentation_scores():
    return {arm: [f"{seg_dir(arm, seed)}/scores.csv" for seed in SEGMENTATION["seeds"]] for arm in SEG_ARMS}


def segmentation_targets():
    if not segmentation_runs():
        return []
    return [f"results/tables/augment/segmentation.{ext}" for ext in ("csv", "md")] + [
        "results/figures/augment/segmentation.png"
    ]
