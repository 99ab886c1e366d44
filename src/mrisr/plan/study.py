"""The facts every stage plans from: the validated config, the results paths, the datasets' subjects and splits, and
what each variant is (learned or not, its generator's key, its start, its label)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable
from typing import Protocol

from mrisr.config import LEARNED_KINDS, variant_training
from mrisr.environments import status
from mrisr.errors import ConfigError
from mrisr.grid import lr_grid
from mrisr.plan import subjects as subject_lists
from mrisr.scale import as_scale, label
from mrisr.settings import CARD_PREPROCESSING, fingerprint

#: ``<variant>@<setting>``: a learned variant trained on a field setting (a ``degradations`` entry) other than the
#: run's ``train.degradation``, e.g. ``esrgan@x4_blur``
SETTING_MARK = "@"


class Wildcards(Protocol):
    """A job's wildcards by name (Snakemake's ``wildcards``; a ``SimpleNamespace`` in tests)."""

    def __getattr__(self, name: str) -> str: ...


class _Unfilled(dict):
    def __missing__(self, key):
        return f"{{{key}}}"


def generator_key(generator: dict, pixel_loss: str) -> str:
    """The pretrained generator's name (its folder under ``results/pretrain/<dataset>/``): the architecture, the
    pixel loss and a digest of the generator's whole config, so that variants sharing both share one model."""
    return f"{generator['name']}-{pixel_loss}-{fingerprint(generator=generator, pixel_loss=pixel_loss)[:8]}"


def parse_degradation(name: str, degradations: dict[str, dict]) -> tuple[dict, float]:
    """(entry of ``degradations``, σ of the added noise) of an LR set's name: ``<entry>`` or ``<entry>-noise<σ>``."""
    if name in degradations:
        return degradations[name], 0.0
    base, sep, sigma = name.rpartition("-noise")
    if sep and base in degradations:
        try:
            return degradations[base], float(sigma)
        except ValueError:
            pass
    raise ConfigError("degradations", f"has no entry for the LR set '{name}'",
                      f"name one of {', '.join(degradations)}, or <entry>-noise<sigma> for added noise")


def pattern(names: list[str]) -> str:
    """A wildcard constraint matching exactly ``names`` (none: a pattern that matches nothing)."""
    return "|".join(names) or "(?!)"


@dataclass(frozen=True)
class SubjectSet:
    """One split of a dataset: the subjects whose volumes one job of a per-volume stage (degrade, super-resolve)
    takes together, in one process that imports torch (and loads a model) once: per-subject jobs spent most of
    their time starting."""

    dataset: str
    split: str
    subjects: tuple[str, ...]

    @property
    def name(self) -> str:
        """Its part of a rule's name (a Python identifier)."""
        return f"{self.dataset}_{self.split}".replace("-", "_")


class Study:
    """The validated config (schema defaults filled) and the results-path table of ``common.smk``."""

    def __init__(self, config: dict, paths: dict[str, str], basedir: str | Path = ".", use_conda: bool = False):
        self.config = config
        self.paths = paths
        self.basedir = Path(basedir)
        self.use_conda = use_conda  # --use-conda: Snakemake builds the outside programs' environments
        #: Snakemake's checkpoint that builds the outside environments (:meth:`ask_environments`); None (planning
        #: alone): every environment counts as there.
        self.environment_checkpoint = None
        for spec in config["datasets"].values():
            # a relative subject list is read from the working directory, else from the workflow's own folder
            tsv = spec.get("subjects_tsv")
            if tsv and not Path(tsv).is_absolute() and not Path(tsv).exists():
                spec["subjects_tsv"] = str(Path(basedir) / tsv)
        self.dataset: str = config["dataset"]
        self.train_degradation: str = config["train"]["degradation"]
        self.run_variants: list[str] = config["run_variants"] or [
            name for name in config["variants"] if self.runs_in(name, self.train_degradation)]
        self.scale: int | list[int] = config["scale"]
        self.field = config["field"]
        self.field_settings: list[str] = self.field["settings"]

    def path(self, entry: str, /, **wildcards) -> str:
        """A ``paths`` entry with the given wildcards filled; the others stay wildcards for Snakemake."""
        return self.paths[entry].format_map(_Unfilled(wildcards))

    def gpu_resources(self, n: int | Callable[[Wildcards], int]) -> dict:
        """The GPUs a job asks a cluster for: ``gpu: n`` (sbatch --gpus) or ``gres: gpu:n`` (--gres), as
        ``slurm.gpu_request`` says; ``n`` may be a function of the job's wildcards."""
        if self.config["slurm"]["gpu_request"] == "gres":
            return {"gres": (lambda wildcards: f"gpu:{n(wildcards)}") if callable(n) else f"gpu:{n}"}
        return {"gpu": n}

    # subjects

    @functools.cache
    def raw_files(self, dataset: str | None = None) -> dict[str, dict[str, str]]:
        dataset = dataset or self.dataset
        index = self.path("bids_index", dataset=dataset) if "bids_index" in self.paths else None
        return subject_lists.raw_files(dataset, self.config["datasets"][dataset], self.paths["raw"], index)

    def subjects(self, dataset: str | None = None) -> list[str]:
        return list(self.raw_files(dataset))

    def labelled(self, dataset: str | None = None) -> bool:
        return all("dseg" in files for files in self.raw_files(dataset).values())

    def datasets(self) -> list[str]:
        """The datasets a run prepares: the training dataset and the out-of-sample one."""
        out_of_sample = self.config["papers"]["threeplayer"]["out_of_sample"]
        return [self.dataset] + [d for d in [out_of_sample] if d and d != self.dataset]

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

    @functools.cached_property
    def subject_sets(self) -> list[SubjectSet]:
        """Each split of each dataset the run prepares (a rule each: Snakemake's outputs are fixed per rule)."""
        return [SubjectSet(dataset, split, tuple(self.subjects_in(split, dataset)))
                for dataset in self.datasets() for split in dict.fromkeys(self.splits(dataset).values())]

    @functools.cached_property
    def _set_of(self) -> dict[tuple[str, str], SubjectSet]:
        return {(s.dataset, subject): s for s in self.subject_sets for subject in s.subjects}

    def set_of(self, dataset: str, subject: str) -> SubjectSet:
        """The set whose jobs take this subject's volumes."""
        return self._set_of[dataset, subject]

    def subjects_in(self, split: str, dataset: str | None = None) -> list[str]:
        return [s for s, part in self.splits(dataset).items() if part == split]

    def hr_files(self, split: str, dataset: str | None = None, kind: str = "T1w") -> list[str]:
        """The prepared files of one kind of a split's subjects."""
        dataset = dataset or self.dataset
        return [self.path("hr", dataset=dataset, subject=s, kind=kind) for s in self.subjects_in(split, dataset)]

    def provenance(self, variant: str, dataset: str) -> dict:
        """What a model card records of the data: the variant, the dataset, the training subjects, prepare's settings."""
        return {"variant": variant, "dataset": dataset, "subjects": self.subjects_in("train", dataset),
                "preprocessing": {k: self.config["prepare"][k] for k in CARD_PREPROCESSING}}

    def learned_degradation(self) -> dict:
        """The degradation entry that the run's models learn to invert."""
        return self.config["degradations"][self.train_degradation]

    def lr_grid_of(self, degradation: str) -> str:
        """Where an LR set's voxels lie on its HR grid (:func:`mrisr.grid.lr_grid` of its entry)."""
        return lr_grid(parse_degradation(degradation, self.config["degradations"])[0]).value

    def scale_of(self, degradation: str) -> int | list[int]:
        """The factors of an LR set (``<entry>[-noise<σ>]``): its entry's own, else the run's."""
        return parse_degradation(degradation, self.config["degradations"])[0].get("scale", self.scale)

    # settings

    def setting(self, name: str) -> str:
        """The degradation entry a variant's models are trained on: ``<variant>@<setting>``'s, else the run's."""
        return name.partition(SETTING_MARK)[2] or self.train_degradation

    def in_setting(self, variant: str, setting: str) -> str:
        """The name of ``variant`` in ``setting``: itself for interpolation and the run's setting, else marked."""
        return variant if not self.learned(variant) or setting == self.train_degradation else \
            f"{variant}{SETTING_MARK}{setting}"

    def describe_setting(self, name: str) -> str:
        """A setting in words, for the settings table: its scale, method and the method's parameter."""
        entry = self.config["degradations"][name]
        detail = {"blur": f", FWHM {entry['blur_fwhm']:g} HR voxels",
                  "kspace_hr": f", 1/{' x 1/'.join(map(str, entry.get('truncation', [])))} of k-space"}
        return f"{label(self.scale_of(name))} {entry['method']}{detail.get(entry['method'], '')}"

    def field_only(self) -> list[str]:
        """The settings that only the settings table runs (the run's own is every table's)."""
        return [s for s in self.field_settings if s != self.train_degradation]

    def main_lr_sets(self) -> list[str]:
        """The LR sets the run's models are applied to: the entries at the run's scale that are no field setting."""
        return [d for d in self.config["degradations"] if d not in self.field_only()
                and as_scale(self.scale_of(d)) == as_scale(self.scale)]

    def trained_variants(self) -> list[str]:
        """Every learned variant name this run trains: the run's variants, then the settings table's."""
        return self.learned_of(list(dict.fromkeys(self.run_variants + self.field_variants())))

    def field_cells(self) -> list[tuple[str, str]]:
        """(setting, variant name in it) of every cell of the settings table: each field variant in each setting it
        runs in (``variants.<name>.settings``)."""
        return [(s, self.in_setting(v, s)) for s in self.field_settings for v in self.field["variants"]
                if self.runs_in(v, s)]

    def field_variants(self) -> list[str]:
        """Every variant name the settings table needs (the learned ones once per setting)."""
        return list(dict.fromkeys(name for _, name in self.field_cells()))

    # variants

    def variant(self, name: str) -> dict:
        return self.config["variants"][name.partition(SETTING_MARK)[0]]

    def training(self, name: str) -> dict:
        """``train`` as the variant ``name`` (a setting's too) trains under it."""
        return variant_training(self.config, name.partition(SETTING_MARK)[0])

    def learned(self, name: str) -> bool:
        return self.variant(name)["kind"] in LEARNED_KINDS

    def runs_in(self, name: str, setting: str) -> bool:
        """Whether a variant runs in a setting: ``variants.<name>.settings`` names it, or is absent."""
        return setting in (self.variant(name).get("settings") or [setting])

    def external(self, name: str) -> bool:
        return self.variant(name)["kind"] == "external"

    def environment(self, name: str) -> str:
        """The name of an outside variant's environment: its file's stem (``envs/eclare.yaml``: ``eclare``)."""
        return Path(self.variant(name)["environment"]).stem

    def environment_file(self, environment: str) -> str:
        """The conda file of an environment, relative paths from the workflow's folder."""
        files = {Path(spec["environment"]) for spec in self.config["variants"].values()
                 if spec["kind"] == "external" and Path(spec["environment"]).stem == environment}
        if len(files) != 1:
            raise ConfigError("variants", f"name {len(files)} environment files called '{environment}'",
                              "give each outside environment a file of its own name")
        file = files.pop()
        return str(file if file.is_absolute() else (self.basedir / file).resolve())

    def environment_available(self, name: str) -> tuple[bool, str]:
        """Whether an outside variant's environment is there (always, under --use-conda) and, if not, why."""
        if self.use_conda or self.environment_checkpoint is None:
            return True, ""
        folder = self.environment_checkpoint.get(environment=self.environment(name)).output[0]
        found = status(folder)
        return found["available"], found.get("reason", "")

    def computed(self, name: str) -> tuple[bool, str]:
        """Whether a variant's SR volumes can be made (an outside program needs its environment) and, if not, why."""
        if not self.external(name):
            return True, ""
        available, reason = self.environment_available(name)
        return available, f"its environment could not be installed: {reason}"

    def ask_environments(self, checkpoint) -> None:
        """Where an outside variant's environment is known: ``checkpoint`` (Snakemake's, which planning does not
        import) builds it and its status; asking it makes a job wait until it has run."""
        self.environment_checkpoint = checkpoint

    def learned_of(self, names: list[str]) -> list[str]:
        return [n for n in names if self.learned(n)]

    def in_run(self, names: list[str]) -> list[str]:
        """The named variants that this run trains, in the order given."""
        return [n for n in names if n in self.run_variants]

    def label(self, name: str) -> str:
        return self.variant(name).get("label", name.partition(SETTING_MARK)[0])

    def pretrained(self, name: str) -> bool:
        return self.learned(name) and self.variant(name)["start"] == "pretrained"

    def generator_key(self, name: str) -> str:
        """The pretrained generator's key of a variant: its generator config and pixel loss (and its setting, for a
        field setting's variant)."""
        key = generator_key(self.variant(name)["generator"], self.variant(name)["losses"]["pixel_loss"])
        setting = name.partition(SETTING_MARK)[2]
        return f"{key}{SETTING_MARK}{setting}" if setting else key

    def start(self, name: str) -> str:
        """What a learned variant's generator started from, for the tables and figures ("" for interpolation)."""
        if not self.learned(name):
            return ""
        if self.variant(name)["start"] == "scratch":
            return "scratch"
        return f"the pixel-loss generator {self.generator_key(name)} ({self.pretrain_steps(self.setting(name))} steps)"

    def pretrain_steps(self, setting: str) -> int:
        """The pixel-loss steps of a setting's generators: ``field.pretrain_steps`` for a field setting, if set."""
        field_steps = self.field["pretrain_steps"] if setting in self.field_only() else None
        return self.config["pretrain"]["steps"] if field_steps is None else field_steps
