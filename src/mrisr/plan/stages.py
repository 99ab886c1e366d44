"""Each stage's decisions: its jobs' inputs, settings, provenance and command lines, from the study's facts. The rule
file of a stage calls these in one line per input, output or parameter; the methods taking ``wildcards`` (and
``input``, ``output``) are Snakemake's input and parameter functions. A job's ``mrisr`` options are written by
:func:`mrisr.commands.command_line` from their names: no flag is spelled here."""

from __future__ import annotations

import os
import re
import shlex

from mrisr.commands import command_line
from mrisr.environments import program_path
from mrisr.errors import ConfigError
from mrisr.plan.study import Study, SubjectSet, Wildcards, parse_degradation, pattern
from mrisr.scale import as_scale
from mrisr.settings import PREPROCESSING, PretrainSettings, SegSettings, TrainSettings, from_config

#: the keys of a download's entry that check it (`mrisr fetch download`'s options of the same names)
DOWNLOAD_CHECKS = ("sha256", "md5", "size")
SEGMENTATION_ARMS = ("real", "real+sr")


def download_options(spec: dict, dest: str) -> str:
    """`mrisr fetch download` of an entry with a ``url`` and the checks it publishes."""
    return command_line("fetch download", url=spec["url"], **{key: spec.get(key) or None for key in DOWNLOAD_CHECKS},
                        dest=dest)


def folder_of(path: str) -> str:
    """The folder a stage writes into: its first output's."""
    return os.path.dirname(path)


class Stage:
    def __init__(self, study: Study):
        self.study = study
        self.config = study.config


class Fetch(Stage):
    """The raw scans of each dataset and the downloaded weights."""

    def datasets_of(self, source: str) -> list[str]:
        return [name for name, spec in self.config["datasets"].items() if spec["source"] == source]

    def dataset_pattern(self, source: str) -> str:
        return pattern(self.datasets_of(source))

    def _spec(self, wildcards: Wildcards) -> dict:
        return self.config["datasets"][wildcards.dataset]

    def demo_datasets(self) -> list[str]:
        """The embedded demo's datasets that the run prepares: a job each, its subjects made in one process."""
        return [d for d in self.study.datasets() if self.config["datasets"][d]["source"] == "demo"]

    @staticmethod
    def demo_rule(dataset: str) -> str:
        return f"fetch_demo_{dataset}".replace("-", "_")

    def demo_seed(self, dataset: str) -> int:
        seed = self.config["datasets"][dataset]["seed"]
        return self.config["seed"] if seed is None else seed

    def demo_outputs(self, dataset: str) -> list[str]:
        return [self.study.path("raw", dataset=dataset, subject=s, kind=kind)
                for s in self.study.subjects(dataset) for kind in ("T1w", "mask", "dseg")]

    def demo_options(self, dataset: str) -> str:
        spec = self.config["datasets"][dataset]
        return command_line("fetch demo", out_dir=os.path.dirname(folder_of(self.demo_outputs(dataset)[0])),
                            subjects=self.study.subjects(dataset), seed=self.demo_seed(dataset),
                            spacing=spec["spacing"], transforms=spec["transforms"])

    def archive_options(self, wildcards: Wildcards, output) -> str:
        return download_options(self._spec(wildcards), output[0])

    def ixi_outputs(self, dataset: str) -> list[str]:
        return [self.study.path("raw", dataset=dataset, subject=s, kind=k)
                for s in self.study.subjects(dataset) for k in ("T1w", "mask")]

    def ixi_options(self, dataset: str) -> str:
        archive = self.study.path("ixi_archive", dataset=dataset)
        return command_line("fetch ixi", tar=archive, subjects=self.study.subjects(dataset), out_dir=folder_of(archive))

    def hcp_options(self, wildcards: Wildcards, output) -> str:
        spec = self._spec(wildcards)
        return command_line("fetch hcp", subject=wildcards.subject, out_dir=folder_of(output.t1w),
                            bucket=spec["bucket"], prefix=spec["prefix"], endpoint_url=spec["endpoint_url"] or None)

    def download_options(self, wildcards: Wildcards, output) -> str:
        return download_options(self.config["downloads"][wildcards.name], output[0])

    def lpips_options(self, wildcards: Wildcards, output) -> str:
        lpips = self.config["lpips"]
        return command_line("fetch lpips", url=lpips["url"], sha256=lpips["sha256"], size=lpips["size"] or None,
                            out_dir=output[0])


class Prepare(Stage):
    """RAS+, brain crop and z-score of the training dataset and the out-of-sample one."""

    def dataset_pattern(self, labelled: bool) -> str:
        return pattern([d for d in self.study.datasets() if self.study.labelled(d) == labelled])

    def kinds(self, dataset: str) -> tuple[str, ...]:
        return ("T1w", "mask", "dseg") if self.study.labelled(dataset) else ("T1w", "mask")

    def targets(self) -> list[str]:
        dataset = self.study.dataset
        return [self.study.path("hr", dataset=dataset, subject=s, kind=k)
                for s in self.study.subjects() for k in self.kinds(dataset)]

    def input(self, wildcards: Wildcards) -> dict[str, str]:
        return {kind: path for kind, path in self.study.raw_files(wildcards.dataset)[wildcards.subject].items()
                if path is not None}

    def options(self, wildcards: Wildcards, input, output) -> str:
        """The subject's files (without a brain mask, a BIDS subject's, prepare takes its head mask) and settings."""
        prepare, given = self.config["prepare"], set(input.keys())
        return command_line("prepare", t1w=input.T1w, mask=input.mask if "mask" in given else None,
                            dseg=input.dseg if "dseg" in given else None, subject=wildcards.subject,
                            out_dir=folder_of(output.t1w), multiple=self.study.scale,
                            preprocessing={key: prepare[key] for key in PREPROCESSING})


class Degrade(Stage):
    """The LR sets: each named degradation, with or without added noise, one job per subject set; and a raw scan made
    a user's LR scan."""

    def outputs(self, subject_set: SubjectSet) -> list[str]:
        """The set's LR volumes, the LR set left a wildcard."""
        return [self.study.path("lr", dataset=subject_set.dataset, subject=s) for s in subject_set.subjects]

    def set_input(self, subject_set: SubjectSet) -> list[str]:
        return [self.study.path("hr", dataset=subject_set.dataset, subject=s, kind="T1w") for s in subject_set.subjects]

    def options(self, wildcards: Wildcards, input, output) -> str:
        spec, sigma = parse_degradation(wildcards.degradation, self.config["degradations"])
        return command_line("degrade", hr=list(input), out=list(output), degradation=spec,
                            scale=self.study.scale_of(wildcards.degradation), noise_sigma=sigma,
                            noise_seed=self.config["seed"])

    def scan_input(self, wildcards: Wildcards) -> str:
        return self.study.raw_files(wildcards.dataset)[wildcards.subject]["T1w"]

    def scan_options(self, wildcards: Wildcards, input, output) -> str:
        """A user's LR scan is made as training's LR, without noise."""
        return command_line("degrade", hr=[input[0]], out=[output[0]], degradation=self.study.learned_degradation(),
                            scale=self.study.scale, noise_sigma=0, noise_seed=self.config["seed"])


class Pretrain(Stage):
    """One pixel-loss generator per generator config and pixel loss that a variant of this run starts from."""

    def generators(self) -> dict[str, tuple[dict, str, str]]:
        """key -> (generator config, pixel loss, the setting it learns)."""
        return {self.study.generator_key(v): (self.study.variant(v)["generator"],
                                              self.study.variant(v)["losses"]["pixel_loss"], self.study.setting(v))
                for v in self.study.trained_variants() if self.study.pretrained(v)}

    def settings(self, wildcards: Wildcards) -> dict:
        """``pretrain``'s own settings, the rest as ``train``'s: the same patches, batches and precision."""
        config, setting = self.config, self.generators()[wildcards.generator][2]
        return from_config(PretrainSettings, config["pretrain"], config["train"], steps=self.study.pretrain_steps(setting),
                           degradation=config["degradations"][setting], scale=self.study.scale_of(setting),
                           seed=config["seed"])

    def training_volumes(self, wildcards: Wildcards) -> list[str]:
        return self.study.hr_files("train", wildcards.dataset)

    def provenance(self, wildcards: Wildcards) -> dict:
        return self.study.provenance(f"pretrained-{wildcards.generator}", wildcards.dataset)

    def options(self, wildcards: Wildcards, input, output) -> str:
        generator, pixel_loss, _ = self.generators()[wildcards.generator]
        return command_line("pretrain", hr=list(input.hr), generator=generator, pixel_loss=pixel_loss,
                            settings=self.settings(wildcards), provenance=self.provenance(wildcards),
                            out_dir=folder_of(output.model), processes=self.config["train"]["gpus"])


class Train(Stage):
    """One GAN per variant, from scratch or from its pretrained generator."""

    def weights(self, variant: str) -> str | None:
        """The feature extractor's weights: a ``downloads`` entry's local file, or the path itself (None: random)."""
        name = self.study.variant(variant).get("feature_extractor", {}).get("weights")
        if not name:
            return None
        return self.study.path("download", name=name) if name in self.config["downloads"] else name

    def input(self, wildcards: Wildcards) -> dict:
        variant = self.study.variant(wildcards.variant)
        inputs: dict = {"hr": self.study.hr_files("train", wildcards.dataset)}
        if self.study.pretrained(wildcards.variant):
            inputs["start"] = self.study.path("pretrained", dataset=wildcards.dataset,
                                              generator=self.study.generator_key(wildcards.variant))
        if self.weights(wildcards.variant) and variant["losses"]["feature"] > 0:
            inputs["weights"] = self.weights(wildcards.variant)
        return inputs

    def variant(self, wildcards: Wildcards) -> dict:
        """The variant's config, its feature-extractor weights given as the local file."""
        variant = self.study.variant(wildcards.variant)
        weights = self.weights(wildcards.variant)
        if weights:
            variant = {**variant, "feature_extractor": {**variant["feature_extractor"], "weights": weights}}
        return variant

    def settings(self, wildcards: Wildcards) -> dict:
        config, setting = self.config, self.study.setting(wildcards.variant)
        return from_config(TrainSettings, self.study.training(wildcards.variant),
                           degradation=config["degradations"][setting], scale=self.study.scale_of(setting),
                           seed=config["seed"])

    def processes(self, wildcards: Wildcards) -> int:
        """The variant's data-parallel processes (its GPUs on a cluster)."""
        return self.study.training(wildcards.variant)["gpus"]

    def resources(self) -> dict:
        return self.study.gpu_resources(self.processes)

    def provenance(self, wildcards: Wildcards) -> dict:
        return self.study.provenance(wildcards.variant, wildcards.dataset)

    def options(self, wildcards: Wildcards, input, output) -> str:
        return command_line("train", hr=list(input.hr), variant=self.variant(wildcards), settings=self.settings(wildcards),
                            provenance=self.provenance(wildcards),
                            start=input.start if "start" in input.keys() else None, out_dir=folder_of(output.model),
                            processes=self.processes(wildcards))


class External(Stage):
    """Outside programs (variants of kind external), each LR volume through its command in its own environment."""

    def environment_file(self, wildcards: Wildcards) -> str:
        return self.study.environment_file(wildcards.environment)

    def install_options(self, wildcards: Wildcards, input, output) -> str:
        return command_line("external install", env_file=input[0], folder=output[0])

    def run_input(self, wildcards: Wildcards) -> dict[str, str]:
        """The LR volume and, unless --use-conda builds it, the environment the workflow built."""
        study = self.study
        inputs = {"lr": study.path("lr", dataset=wildcards.dataset, degradation=wildcards.degradation,
                                   subject=wildcards.subject)}
        if not study.use_conda:
            inputs["environment"] = study.path("external_env", environment=study.environment(wildcards.variant))
        return inputs

    def conda_file(self, wildcards: Wildcards) -> str:
        return self.study.environment_file(self.study.environment(wildcards.variant))

    def command(self, wildcards: Wildcards, input, output) -> str:
        """The variant's command line with its placeholders filled (values quoted for the shell)."""
        study = self.study
        spec = study.variant(wildcards.variant)
        values = {"lr": input.lr, "out_dir": output[0],
                  "slice_thickness": max(as_scale(study.scale_of(wildcards.degradation))),
                  **({"iterations": spec["iterations"]} if "iterations" in spec else {})}
        try:
            return spec["command"].format(**{key: shlex.quote(str(value)) for key, value in values.items()})
        except (KeyError, IndexError, ValueError) as error:
            raise ConfigError(f"variants.{wildcards.variant}.command", f"has a placeholder it cannot fill ({error})",
                              "use only {lr}, {out_dir}, {slice_thickness} and {iterations} (set "
                              "iterations to use it; double a literal brace)") from None

    def search_path(self, wildcards: Wildcards, input) -> str:
        """What the shell exports before the command: the built environment's programs first on PATH."""
        if self.study.use_conda:
            return ""
        return f'PATH={shlex.quote(str(program_path(input.environment)))}:"$PATH"'


class SuperResolve(Stage):
    """Whole LR volumes onto the HR grid, by interpolation, a trained generator or an outside program: one job per
    subject set (:class:`~mrisr.plan.study.SubjectSet`), LR set and variant."""

    def targets(self) -> list[str]:
        study = self.study
        return [study.path("sr", dataset=study.dataset, degradation=degradation, variant=variant, subject=subject)
                for degradation in study.main_lr_sets() for variant in study.run_variants for subject in study.subjects_in("test")]

    def outputs(self, subject_set: SubjectSet) -> list[str]:
        """The set's SR volumes, the LR set and variant left wildcards."""
        return [self.study.path("sr", dataset=subject_set.dataset, subject=subject) for subject in subject_set.subjects]

    def _inputs(self, dataset: str, degradation: str, variant: str, subjects) -> dict[str, list[str]]:
        study = self.study
        inputs = {"lr": [study.path("lr", dataset=dataset, degradation=degradation, subject=s) for s in subjects],
                  "reference": [study.path("hr", dataset=dataset, subject=s, kind="T1w") for s in subjects]}
        if study.learned(variant):
            inputs["model"] = study.path("model", dataset=study.dataset, variant=variant)
        if study.external(variant):
            inputs["external"] = [study.path("external_out", dataset=dataset, subject=s, degradation=degradation,
                                             variant=variant) for s in subjects]
        return inputs

    def input(self, wildcards: Wildcards) -> dict:
        """One subject's (the pasted tiles')."""
        return self._inputs(wildcards.dataset, wildcards.degradation, wildcards.variant, [wildcards.subject])

    def set_input(self, subject_set: SubjectSet):
        """The input function of a set's rule."""
        return lambda wildcards: self._inputs(subject_set.dataset, wildcards.degradation, wildcards.variant,
                                              subject_set.subjects)

    def inference(self, pasted: bool) -> dict:
        """How the generator runs over a volume (``inference.*``; the autocast: ``inference.precision``, else the run's
        training precision); ``pasted``: the authors' tiles of ``papers.disgan.pasted_tile``."""
        inference = self.config["inference"]
        return {"tile": self.config["papers"]["disgan"]["pasted_tile"] if pasted else inference["tile"],
                "halo": inference["halo"], "reconstruct_tile": inference["reconstruct_tile"],
                "batch": inference["batch"], "pasted": pasted,
                "precision": inference["precision"] or self.config["train"]["precision"]}

    def acceleration(self) -> dict:
        """How fast the generator runs: ``inference.compile``, and train's cuDNN autotuner and TF32."""
        train = self.config["train"]
        return {"compile": self.config["inference"]["compile"], "tf32": train["tf32"],
                "cudnn_benchmark": train["cudnn_benchmark"]}

    def method(self, wildcards: Wildcards, input) -> dict:
        """A model (the prepared LR is in its units already), an outside program's output or an interpolation."""
        study, scale = self.study, self.study.scale_of(wildcards.degradation)
        scan = {"reference": list(input.reference)}
        if study.learned(wildcards.variant):
            return {"method": {"model": input.model}, "scan": {**scan, "prepared": True}}
        grid = study.lr_grid_of(wildcards.degradation)
        if study.external(wildcards.variant):
            return {"method": {"external": list(input.external), "scale": scale, "lr_grid": grid}, "scan": scan}
        return {"method": {"interpolate": study.variant(wildcards.variant)["mode"], "scale": scale, "lr_grid": grid},
                "scan": scan}

    def options(self, wildcards: Wildcards, input, output, pasted: bool = False) -> str:
        """Every LR volume of the job into its output's folder (one: into its file)."""
        out = output[0] if len(output) == 1 else folder_of(output[0])
        return command_line("super-resolve", inputs=list(input.lr), output=out, **self.method(wildcards, input),
                            inference=self.inference(pasted), acceleration=self.acceleration())

    def pasted_options(self, wildcards: Wildcards, input, output) -> str:
        return self.options(wildcards, input, output, pasted=True)

    def scan_options(self, wildcards: Wildcards, input, output) -> str:
        """A user's scan as the README applies a model to it: the model card's preprocessing, nothing else given."""
        return command_line("super-resolve", inputs=[input.lr], output=output[0], method={"model": input.model})


class Evaluate(Stage):
    """Per-subject metrics of each LR set and variant; each model's card with its test-set metrics."""

    def model_card_targets(self) -> list[str]:
        study = self.study
        return [study.path("model_card", dataset=study.dataset, variant=v) for v in study.learned_of(study.run_variants)]

    def test_subjects(self, wildcards: Wildcards) -> list[str]:
        return self.study.subjects_in("test", wildcards.dataset)

    def input(self, wildcards: Wildcards) -> dict:
        study, subjects = self.study, self.test_subjects(wildcards)
        lr_set = {"dataset": wildcards.dataset, "degradation": wildcards.degradation}
        inputs = {"gt": study.hr_files("test", wildcards.dataset),
                  "mask": study.hr_files("test", wildcards.dataset, kind="mask"),
                  "lr": [study.path("lr", **lr_set, subject=s) for s in subjects]}
        if self.study.computed(wildcards.variant)[0]:
            inputs["pred"] = [study.path("sr", **lr_set, variant=wildcards.variant, subject=s) for s in subjects]
        if study.external(wildcards.variant) and not study.use_conda:  # rescored when the environment is rebuilt
            inputs["environment"] = study.path("external_env", environment=study.environment(wildcards.variant))
        if self.config["lpips"]["enabled"]:
            inputs["lpips"] = study.path("lpips")
        return inputs

    def options(self, wildcards: Wildcards, input, output) -> str:
        """The subjects and their files, the SR volumes or why they are not computed, and LPIPS's. One parameter,
        not ``{input.<name>}`` in the shell: an outside variant's input stays the checkpoint's until it is done
        (Snakemake issue 4312), and asking it first makes this parameter wait too."""
        computed, reason = self.study.computed(wildcards.variant)
        lpips = self.config["lpips"]
        return command_line("evaluate", subjects=self.test_subjects(wildcards), gt=list(input.gt),
                            pred=list(input.pred) if computed else None, not_computed_reason=None if computed else reason,
                            mask=list(input.mask), lr=list(input.lr), out=output[0],
                            mtvnet=self.config["mtvnet_metrics"] or None,  # off: the command as before
                            lpips={"dir": input.lpips, "step": lpips["slice_step"], "sha256": lpips["sha256"]}
                            if lpips["enabled"] else {})

    def model_card_options(self, wildcards: Wildcards, input, output) -> str:
        return command_line("model-card", model=input.model, metrics=input.metrics,
                            degradation=self.study.train_degradation, out=output[0])


class Segment(Stage):
    """The SR-augmentation study: each arm (real, real+sr) trained per seed, then scored on the real test images."""

    def __init__(self, study: Study):
        super().__init__(study)
        self.settings_of_config = self.config["segmentation"]
        self.degradation: str = self.settings_of_config["degradation"] or study.train_degradation
        # the study runs by default when the dataset has label maps; asked for without them, a clear stop
        self.runs: bool = self.settings_of_config["enabled"] is not False and study.labelled()
        if self.settings_of_config["enabled"] and not study.labelled():
            raise ConfigError("segmentation.enabled", f"dataset '{study.dataset}' has no label maps (sub-<id>_dseg), "
                              "which the SR-augmentation study trains on",
                              "set segmentation.enabled: false (or null), or give the dataset label maps")

    def train_input(self, wildcards: Wildcards) -> dict[str, list[str]]:
        study = self.study
        inputs = {"image": study.hr_files("train", wildcards.dataset),
                  "label": study.hr_files("train", wildcards.dataset, kind="dseg")}
        if wildcards.arm == "real+sr":
            inputs["sr"] = [study.path("sr", dataset=wildcards.dataset, subject=s, degradation=self.degradation,
                                       variant=self.settings_of_config["sr_variant"])
                            for s in study.subjects_in("train", wildcards.dataset)]
        return inputs

    def settings(self, wildcards: Wildcards) -> dict:
        return from_config(SegSettings, self.settings_of_config, seed=int(wildcards.seed),
                           precision=self.config["train"]["precision"])

    def train_options(self, wildcards: Wildcards, input, output) -> str:
        return command_line("segment train", image=list(input.image), label=list(input.label),
                            sr=list(input.sr) if wildcards.arm == "real+sr" else None,
                            network=self.settings_of_config["network"], settings=self.settings(wildcards),
                            out_dir=folder_of(output.model))

    def test_files(self, kind: str) -> list[str]:
        return self.study.hr_files("test", kind=kind)

    def test_segmentations(self) -> list[str]:
        return [self.study.path("segment", file=f"sub-{s}_dseg.nii.gz") for s in self.study.subjects_in("test")]

    def evaluate_options(self, wildcards: Wildcards, input, output) -> str:
        seg = self.settings_of_config
        return command_line("segment evaluate", model=input.model, subjects=self.study.subjects_in("test"),
                            image=list(input.image), label=list(input.label), roi=seg["patch_size"],
                            overlap=seg["overlap"], hd95=seg["hd95"], out_dir=folder_of(output.scores),
                            out=output.scores)


class Anatomy(Stage):
    """Does SR keep anatomy true: each test subject's HR volume (one job) and each cell's SR volumes (the method
    table's and the settings table's; one job per setting, its segmenters loaded once) segmented by segmenters that
    never saw SR."""

    def __init__(self, study: Study, segment: Segment):
        super().__init__(study)
        spec = self.config["anatomy"]
        #: the network needs the segment stage's model: where that stage does not run, Atropos alone
        self.segmenters: list[str] = [s for s in spec["segmenters"] if s != "network" or segment.runs]
        self.segmentation = self.config["segmentation"]
        main = [(study.train_degradation, v) for v in study.in_run(self.config["papers"]["threeplayer"]["methods"])]
        #: (setting, variant) of every SR volume set compared, the method table's first
        self.cells: list[tuple[str, str]] = list(dict.fromkeys(main + study.field_cells()))
        self.runs: bool = bool(self.segmenters and self.cells)

    def settings(self) -> list[str]:
        """The settings of the cells, in their order: a job each."""
        return list(dict.fromkeys(setting for setting, _ in self.cells))

    @staticmethod
    def rule(setting: str) -> str:
        return "anatomy_" + re.sub(r"\W", "_", setting)

    def labels(self, **wildcards) -> list[str]:
        """The label maps of one set of volumes: per segmenter, per test subject."""
        entry = "anatomy" if wildcards else "anatomy_hr"
        return [self.study.path(entry, dataset=self.study.dataset, **wildcards, file=f"{segmenter}/sub-{s}_dseg.nii.gz")
                for segmenter in self.segmenters for s in self.study.subjects_in("test")]

    def hr_outputs(self) -> dict[str, str | list[str]]:
        return {"table": self.study.path("anatomy_hr", dataset=self.study.dataset, file="volumes.csv"),
                "labels": self.labels()}

    def outputs(self, setting: str) -> list[str]:
        """Each cell's table and label maps of one setting."""
        return [path for s, variant in self.cells if s == setting
                for path in [self.cell_path(s, variant), *self.labels(degradation=s, variant=variant)]]

    def model(self) -> dict[str, str]:
        if "network" not in self.segmenters:
            return {}
        return {"model": self.study.path("segment", dataset=self.study.dataset, arm="real",
                                         seed=self.segmentation["seeds"][0], file="model.pt")}

    def reference_input(self, wildcards: Wildcards) -> dict:
        return {"image": self.study.hr_files("test"), "mask": self.study.hr_files("test", kind="mask"), **self.model()}

    def _images(self, setting: str, variant: str) -> list[str]:
        study = self.study
        return [study.path("sr", dataset=study.dataset, degradation=setting, variant=variant, subject=s)
                for s in study.subjects_in("test")]

    def set_input(self, setting: str):
        """The input function of a setting's job: every computed cell's SR volumes (an outside method's cell waits for
        its environment, and is redone when it is rebuilt)."""
        study = self.study

        def inputs(wildcards: Wildcards) -> dict:
            found = {"mask": study.hr_files("test", kind="mask"), **self.model(),
                     "reference": study.path("anatomy_hr", dataset=study.dataset, file="volumes.csv"), "image": []}
            for s, variant in self.cells:
                if s == setting and study.computed(variant)[0]:
                    found["image"] += self._images(s, variant)
            found["environment"] = [study.path("external_env", environment=study.environment(v))
                                    for s, v in self.cells if s == setting and study.external(v) and not study.use_conda]
            return found
        return inputs

    def set_options(self, setting: str):
        """The parameter function of a setting's job: each cell's volumes, or why they were not computed."""
        def options(wildcards: Wildcards, input, output) -> str:
            cells = []
            for s, variant in self.cells:
                if s == setting:
                    computed, reason = self.study.computed(variant)
                    cells.append({"out": self.cell_path(s, variant),
                                  **({"image": self._images(s, variant)} if computed else {"not_computed": reason})})
            return self._command(input, cells=cells, reference_dir=folder_of(input.reference))
        return options

    def reference_options(self, wildcards: Wildcards, input, output) -> str:
        return self._command(input, cells=[{"image": list(input.image), "out": output.table}])

    def _command(self, input, **values) -> str:
        segmenters = {"names": self.segmenters, "model": input.get("model"), "roi": self.segmentation["patch_size"],
                      "overlap": self.segmentation["overlap"], **self.config["anatomy"]["atropos"]}
        return command_line("anatomy", subjects=self.study.subjects_in("test"), mask=list(input.mask),
                            segmenters=segmenters, **values)

    def cell_path(self, setting: str, variant: str) -> str:
        return self.study.path("anatomy", dataset=self.study.dataset, degradation=setting, variant=variant,
                               file="volumes.csv")

    def targets(self) -> list[str]:
        return [self.cell_path(s, v) for s, v in self.cells] if self.runs else []
