"""The facts every stage plans from: the validated config, the results paths, the datasets' subjects and splits, and
what each variant is (learned or not, its generator's key, its start, its label)."""

from __future__ import annotations

import functools
import hashlib
import json
import shlex
from pathlib import Path
from typing import Protocol

from mrisr.plan import subjects as subject_lists


class Wildcards(Protocol):
    """A job's wildcards by name (Snakemake's ``wildcards``; a ``SimpleNamespace`` in tests)."""

    def __getattr__(self, name: str) -> str: ...


class _Unfilled(dict):
    def __missing__(self, key):
        return f"{{{key}}}"


def as_json(value) -> str:
    return json.dumps(value, sort_keys=True)


def option(flag: str, *values) -> str:
    """A command-line option with its values quoted for the shell (paths with spaces, labels with parentheses)."""
    return " ".join([flag, *(shlex.quote(str(v)) for v in values)])


def fingerprint(**parts) -> str:
    """Hash of everything that changes a training's result (JSON, sorted keys)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def generator_key(generator: dict, pixel_loss: str) -> str:
    """The pretrained generator's name (its folder under ``results/pretrain/<dataset>/``): the architecture, the
    pixel loss and a digest of the generator's whole config, so that variants sharing both share one model."""
    return f"{generator['name']}-{pixel_loss}-{fingerprint(generator=generator, pixel_loss=pixel_loss)[:8]}"


def pattern(names: list[str]) -> str:
    """A wildcard constraint matching exactly ``names`` (none: a pattern that matches nothing)."""
    return "|".join(names) or "(?!)"


class Study:
    """The validated config (schema defaults filled) and the results-path table of ``common.smk``."""

    def __init__(self, config: dict, paths: dict[str, str], basedir: str | Path = "."):
        self.config = config
        self.paths = paths
        for spec in config["datasets"].values():
            # a relative subject list is read from the working directory, else from the workflow's own folder
            tsv = spec.get("subjects_tsv")
            if tsv and not Path(tsv).is_absolute() and not Path(tsv).exists():
                spec["subjects_tsv"] = str(Path(basedir) / tsv)
        self.dataset: str = config["dataset"]
        self.train_degradation: str = config["train"]["degradation"]
        self.run_variants: list[str] = config["run_variants"] or list(config["variants"])
        self.scale: int = config["scale"]

    def path(self, entry: str, /, **wildcards) -> str:
        """A ``paths`` entry with the given wildcards filled; the others stay wildcards for Snakemake."""
        return self.paths[entry].format_map(_Unfilled(wildcards))

    def gpu_resources(self, n: int) -> dict:
        """The GPUs a job asks a cluster for: ``gpu: n`` (sbatch --gpus) or ``gres: gpu:n`` (--gres), as
        ``slurm.gpu_request`` says."""
        return {"gres": f"gpu:{n}"} if self.config["slurm"]["gpu_request"] == "gres" else {"gpu": n}

    # subjects

    @functools.cache
    def raw_files(self, dataset: str | None = None) -> dict[str, dict[str, str]]:
        dataset = dataset or self.dataset
        return subject_lists.raw_files(dataset, self.config["datasets"][dataset], self.paths["raw"])

    def subjects(self, dataset: str | None = None) -> list[str]:
        return list(self.raw_files(dataset))

    def labelled(self, dataset: str | None = None) -> bool:
        return all("dseg" in files for files in self.raw_files(dataset).values())

    @functools.cache  # input functions ask for it per job; an HCP split is read from its TSV
    def splits(self, dataset: str | None = None) -> dict[str, str]:
        """The training dataset is split (as its subject list says, else by a seeded shuffle); any other dataset
        (out-of-sample) is test data only."""
        dataset = dataset or self.dataset
        if dataset != self.dataset:
            return {s: "test" for s in self.subjects(dataset)}
        fixed = subject_lists.fixed_splits(self.config["datasets"][dataset])
        if fixed:  # the subject list's own split column
            return fixed
        prep = self.config["prepare"]
        return subject_lists.make_splits(self.subjects(dataset), prep["val"], prep["test"], self.config["seed"])

    def subjects_in(self, split: str, dataset: str | None = None) -> list[str]:
        return [s for s, part in self.splits(dataset).items() if part == split]

    def hr_files(self, split: str, dataset: str | None = None, kind: str = "T1w") -> list[str]:
        """The prepared files of one kind of a split's subjects."""
        dataset = dataset or self.dataset
        return [self.path("hr", dataset=dataset, subject=s, kind=kind) for s in self.subjects_in(split, dataset)]

    def provenance(self, variant: str, dataset: str) -> dict:
        """What a model card records of the data: the variant, the dataset, the training subjects, prepare's settings."""
        return {"variant": variant, "dataset": dataset, "subjects": self.subjects_in("train", dataset),
                "preprocessing": {k: self.config["prepare"][k] for k in ("crop", "margin", "normalise")}}

    def learned_degradation(self) -> dict:
        """The degradation entry that training learns to invert."""
        return self.config["degradations"][self.train_degradation]

    # variants

    def variant(self, name: str) -> dict:
        return self.config["variants"][name]

    def learned(self, name: str) -> bool:
        return self.variant(name)["kind"] == "gan"

    def learned_of(self, names: list[str]) -> list[str]:
        return [n for n in names if self.learned(n)]

    def in_run(self, names: list[str]) -> list[str]:
        """The named variants that this run trains, in the order given."""
        return [n for n in names if n in self.run_variants]

    def label(self, name: str) -> str:
        return self.variant(name).get("label", name)

    def pretrained(self, name: str) -> bool:
        return self.learned(name) and self.variant(name)["start"] == "pretrained"

    def generator_key(self, name: str) -> str:
        """The pretrained generator's key of a variant: its generator config and pixel loss."""
        return generator_key(self.variant(name)["generator"], self.variant(name)["losses"]["pixel_loss"])

    def start(self, name: str) -> str:
        """What a learned variant's generator started from, for the tables and figures ("" for interpolation)."""
        if not self.learned(name):
            return ""
        if self.variant(name)["start"] == "scratch":
            return "scratch"
        return f"the pixel-loss generator {self.generator_key(name)} ({self.config['pretrain']['steps']} steps)"
