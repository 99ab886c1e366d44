# What every stage needs: the validated config, datasets, subjects and splits, and one table of results paths.

import functools
import json
import os
import shlex
from pathlib import Path

from mrisr import config as mrisr_config
from mrisr.fetch import sources
from mrisr.prepare import make_splits

mrisr_config.validate(config, Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml")

DATASET = config["dataset"]
ENV = "../../envs/mrisr.yaml"
# --use-conda: the env's post-deploy script (envs/mrisr.post-deploy.sh) installs mrisr from this checkout
os.environ.update(MRISR_CHECKOUT=workflow.basedir)  # set here, not read: no envvars directive
TRAIN_DEGRADATION = config["train"]["degradation"]
RUN_VARIANTS = config["run_variants"] or list(config["variants"])
# the GPUs a job asks a cluster for: `gpu: n` (sbatch --gpus) or `gres: gpu:n` (--gres), as slurm.gpu_request says
gpu_resources = lambda n: {"gres": f"gpu:{n}"} if config["slurm"]["gpu_request"] == "gres" else {"gpu": n}
# a command-line option with its values quoted for the shell (paths with spaces, labels with parentheses)
option = lambda flag, *values: " ".join([flag, *(shlex.quote(str(v)) for v in values)])


wildcard_constraints:
    dataset=r"[A-Za-z0-9_-]+",
    subject=r"[A-Za-z0-9]+",
    variant=r"[A-Za-z0-9_-]+",
    degradation=r"[A-Za-z0-9_.-]+",
    generator=r"[A-Za-z0-9_-]+",


#: Every results path, one folder per stage; inputs and outputs alike take them from here through `path`.
PATHS = {
    "raw": "results/fetch/{dataset}/sub-{subject}/sub-{subject}_{kind}.nii.gz",
    "ixi_archive": "results/fetch/{dataset}/IXI-T1.tar",
    "download": "results/fetch/downloads/{name}",
    "lpips": "results/fetch/lpips",
    "hr": "results/prepare/{dataset}/sub-{subject}/sub-{subject}_{kind}.nii.gz",
    "lr": "results/degrade/{dataset}/{degradation}/sub-{subject}_T1w.nii.gz",
    "scan_lr": "results/degrade/{dataset}/scan/sub-{subject}_acq-lr_T1w.nii.gz",  # a raw scan made a user's LR scan
    "pretrained": "results/pretrain/{dataset}/{generator}/model.pt",
    "pretrain_log": "results/pretrain/{dataset}/{generator}/train_log.csv",
    "model": "results/train/{dataset}/{variant}/model.pt",
    "train_log": "results/train/{dataset}/{variant}/train_log.csv",
    "sr": "results/super_resolve/{dataset}/{degradation}/{variant}/sub-{subject}_T1w.nii.gz",
    "scan_sr": "results/super_resolve/{dataset}/scan/{variant}/sub-{subject}_acq-sr_T1w.nii.gz",
    "sr_pasted": "results/super_resolve/{dataset}/{degradation}/{variant}/pasted/sub-{subject}_T1w.nii.gz",
    "metrics": "results/evaluate/{dataset}/{degradation}/{variant}.csv",
    "model_card": "results/evaluate/{dataset}/model_cards/{variant}.pt",
    "segment": "results/segment/{dataset}/{arm}/seed-{seed}/{file}",
    "paper": "results/papers/{dataset}/{paper}/{name}",
}


class _Wildcards(dict):
    def __missing__(self, key):
        return f"{{{key}}}"


def path(entry, /, **wildcards):
    """A `PATHS` entry with the given wildcards filled; the others stay wildcards for Snakemake."""
    return PATHS[entry].format_map(_Wildcards(wildcards))


def as_json(value):
    return json.dumps(value, sort_keys=True)


for _spec in config["datasets"].values():
    # a relative subject list is read from the working directory, else from the workflow's own folder
    _tsv = _spec.get("subjects_tsv")
    if _tsv and not Path(_tsv).is_absolute() and not Path(_tsv).exists():
        _spec["subjects_tsv"] = str(Path(workflow.basedir) / _tsv)


@functools.cache
def raw_files(dataset=DATASET):
    return sources.raw_files(dataset, config["datasets"][dataset], PATHS["raw"])


def subjects(dataset=DATASET):
    return list(raw_files(dataset))


def labelled(dataset=DATASET):
    return all("dseg" in files for files in raw_files(dataset).values())


@functools.cache  # input functions ask for it per job; an HCP split is read from its TSV
def splits(dataset=DATASET):
    """The training dataset is split (as its subject list says, else by a seeded shuffle); any other dataset
    (out-of-sample) is test data only."""
    if dataset != DATASET:
        return {s: "test" for s in subjects(dataset)}
    fixed = sources.fixed_splits(config["datasets"][dataset])
    if fixed:  # the subject list's own split column
        return fixed
    prep = config["prepare"]
    return make_splits(subjects(dataset), prep["val"], prep["test"], config["seed"])


def subjects_in(split, dataset=DATASET):
    return [s for s, part in splits(dataset).items() if part == split]
