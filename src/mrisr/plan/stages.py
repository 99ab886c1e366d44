"""Each stage's decisions: its jobs' inputs, settings and provenance, from the study's facts. The rule file of a
stage calls these in one line per input, output or parameter; the methods taking ``wildcards`` (and ``input``) are
Snakemake's input functions."""

from __future__ import annotations

import shlex

from mrisr.environments import program_path
from mrisr.errors import ConfigError
from mrisr.plan.study import Study, Wildcards, as_json, option, parse_degradation, pattern
from mrisr.scale import as_scale

#: the options of `mrisr fetch download` that check a download, in their order on the command line
DOWNLOAD_CHECKS = ("sha256", "md5", "size")
#: `train` settings of a GAN's training: its result, checkpointing and speed (the rest of `train` is the workflow's)
TRAIN_KEYS = ("steps", "batch_size", "patch_size", "checkpoint_every", "precision", "memory_format",
              "patch_sampling", "patch_stride", "shared_discriminator_pass", "relativistic_mean", "cudnn_benchmark",
              "tf32", "compile")
#: `train` settings that the pixel-loss generators share with the GANs: the same patches, batches and precision
PRETRAIN_KEYS_FROM_TRAIN = ("batch_size", "patch_size", "checkpoint_every", "precision", "memory_format",
                            "patch_sampling", "patch_stride", "cudnn_benchmark", "tf32", "compile")
SEGMENT_KEYS = ("steps", "batch_size", "patch_size", "lr", "classes", "sr_fraction", "checkpoint_every")
SEGMENTATION_ARMS = ("real", "real+sr")


def download_checks(spec: dict) -> str:
    return " ".join(option(f"--{key}", spec[key]) for key in DOWNLOAD_CHECKS if spec.get(key))


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

    def demo_spacing(self, wildcards: Wildcards) -> float:
        return self._spec(wildcards)["spacing"]

    def demo_transforms(self, wildcards: Wildcards) -> str:
        return as_json(self._spec(wildcards)["transforms"])

    def demo_seed(self, wildcards: Wildcards) -> int:
        seed = self._spec(wildcards)["seed"]
        return self.config["seed"] if seed is None else seed

    def archive_url(self, wildcards: Wildcards) -> str:
        return self._spec(wildcards)["url"]

    def archive_checks(self, wildcards: Wildcards) -> str:
        return download_checks(self._spec(wildcards))

    def ixi_outputs(self, dataset: str) -> list[str]:
        return [self.study.path("raw", dataset=dataset, subject=s, kind=k)
                for s in self.study.subjects(dataset) for k in ("T1w", "mask")]

    def hcp_options(self, wildcards: Wildcards) -> str:
        spec = self._spec(wildcards)
        return " ".join([option("--bucket", spec["bucket"]), option("--prefix", spec["prefix"])]
                        + [option("--endpoint-url", spec["endpoint_url"])] * bool(spec["endpoint_url"]))

    def download_url(self, wildcards: Wildcards) -> str:
        return self.config["downloads"][wildcards.name]["url"]

    def download_checks(self, wildcards: Wildcards) -> str:
        return download_checks(self.config["downloads"][wildcards.name])

    def lpips_size(self) -> str:
        return f"--size {self.config['lpips']['size']}" if self.config["lpips"]["size"] else ""


class Prepare(Stage):
    """RAS+, brain crop and z-score of the training dataset and the out-of-sample one."""

    def datasets(self) -> list[str]:
        out_of_sample = self.config["papers"]["threeplayer"]["out_of_sample"]
        return [self.study.dataset] + [d for d in [out_of_sample] if d and d != self.study.dataset]

    def dataset_pattern(self, labelled: bool) -> str:
        return pattern([d for d in self.datasets() if self.study.labelled(d) == labelled])

    def kinds(self, dataset: str) -> tuple[str, ...]:
        return ("T1w", "mask", "dseg") if self.study.labelled(dataset) else ("T1w", "mask")

    def targets(self) -> list[str]:
        dataset = self.study.dataset
        return [self.study.path("hr", dataset=dataset, subject=s, kind=k)
                for s in self.study.subjects() for k in self.kinds(dataset)]

    def input(self, wildcards: Wildcards) -> dict[str, str]:
        return {kind: path for kind, path in self.study.raw_files(wildcards.dataset)[wildcards.subject].items()
                if path is not None}

    def mask_option(self, wildcards: Wildcards, input) -> str:
        """``--mask`` where the subject has a brain mask; else prepare takes its head mask (a BIDS subject)."""
        return option("--mask", input.mask) if "mask" in input.keys() else ""

    def resample(self) -> str:
        return f"--resample {self.config['prepare']['resample']}" if self.config["prepare"]["resample"] else ""

    def dseg_option(self, wildcards: Wildcards, input) -> str:
        return option("--dseg", input.dseg)


class Degrade(Stage):
    """The LR sets: each named degradation, with or without added noise; and a raw scan made a user's LR scan."""

    def spec(self, wildcards: Wildcards) -> dict:
        return parse_degradation(wildcards.degradation, self.config["degradations"])[0]

    def degradation(self, wildcards: Wildcards) -> str:
        return as_json(self.spec(wildcards))

    def scale(self, wildcards: Wildcards) -> str:
        return self.study.scale_option(wildcards.degradation)

    def scan_degradation(self) -> str:
        """A user's LR scan is made as training's LR."""
        return as_json(self.study.learned_degradation())

    def noise_sigma(self, wildcards: Wildcards) -> float:
        return parse_degradation(wildcards.degradation, self.config["degradations"])[1]

    def scan_input(self, wildcards: Wildcards) -> str:
        return self.study.raw_files(wildcards.dataset)[wildcards.subject]["T1w"]


class Pretrain(Stage):
    """One pixel-loss generator per generator config and pixel loss that a variant of this run starts from."""

    def generators(self) -> dict[str, tuple[dict, str, str]]:
        """key -> (generator config, pixel loss, the setting it learns)."""
        return {self.study.generator_key(v): (self.study.variant(v)["generator"],
                                              self.study.variant(v)["losses"]["pixel_loss"], self.study.setting(v))
                for v in self.study.trained_variants() if self.study.pretrained(v)}

    def generator(self, wildcards: Wildcards) -> str:
        return as_json(self.generators()[wildcards.generator][0])

    def pixel_loss(self, wildcards: Wildcards) -> str:
        return self.generators()[wildcards.generator][1]

    def settings(self, wildcards: Wildcards) -> str:
        config, setting = self.config, self.generators()[wildcards.generator][2]
        return as_json({**config["pretrain"], **{k: config["train"][k] for k in PRETRAIN_KEYS_FROM_TRAIN},
                        "steps": self.study.pretrain_steps(setting), "degradation": self.config["degradations"][setting],
                        "scale": self.study.scale_of(setting), "seed": config["seed"]})

    def training_volumes(self, wildcards: Wildcards) -> list[str]:
        return self.study.hr_files("train", wildcards.dataset)

    def provenance(self, wildcards: Wildcards) -> str:
        return as_json(self.study.provenance(f"pretrained-{wildcards.generator}", wildcards.dataset))


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

    def variant(self, wildcards: Wildcards) -> str:
        """The variant's config, its feature-extractor weights given as the local file."""
        variant = self.study.variant(wildcards.variant)
        weights = self.weights(wildcards.variant)
        if weights:
            variant = {**variant, "feature_extractor": {**variant["feature_extractor"], "weights": weights}}
        return as_json(variant)

    def settings(self, wildcards: Wildcards) -> str:
        config, setting = self.config, self.study.setting(wildcards.variant)
        return as_json({**{k: config["train"][k] for k in TRAIN_KEYS}, "degradation": config["degradations"][setting],
                        "scale": self.study.scale_of(setting), "seed": config["seed"]})

    def provenance(self, wildcards: Wildcards) -> str:
        return as_json(self.study.provenance(wildcards.variant, wildcards.dataset))

    def start_option(self, wildcards: Wildcards, input) -> str:
        return option("--start", input.start) if "start" in input.keys() else ""


class External(Stage):
    """Outside programs (variants of kind external), each LR volume through its command in its own environment."""

    def environment_file(self, wildcards: Wildcards) -> str:
        return self.study.environment_file(wildcards.environment)

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
                              f"use only {{lr}}, {{out_dir}}, {{slice_thickness}} and {{iterations}} (set "
                              "iterations to use it; double a literal brace)") from None

    def search_path(self, wildcards: Wildcards, input) -> str:
        """What the shell exports before the command: the built environment's programs first on PATH."""
        if self.study.use_conda:
            return ""
        return f'PATH={shlex.quote(str(program_path(input.environment)))}:"$PATH"'


class SuperResolve(Stage):
    """Whole LR volumes onto the HR grid, by interpolation, a trained generator or an outside program."""

    def targets(self) -> list[str]:
        study = self.study
        return [study.path("sr", dataset=study.dataset, degradation=degradation, variant=variant, subject=subject)
                for degradation in study.main_lr_sets() for variant in study.run_variants for subject in study.subjects_in("test")]

    def input(self, wildcards: Wildcards) -> dict[str, str]:
        study = self.study
        inputs = {"lr": study.path("lr", dataset=wildcards.dataset, degradation=wildcards.degradation,
                                   subject=wildcards.subject),
                  "reference": study.path("hr", dataset=wildcards.dataset, subject=wildcards.subject, kind="T1w")}
        if study.learned(wildcards.variant):
            inputs["model"] = study.path("model", dataset=study.dataset, variant=wildcards.variant)
        if study.external(wildcards.variant):
            inputs["external"] = study.path("external_out", dataset=wildcards.dataset, subject=wildcards.subject,
                                            degradation=wildcards.degradation, variant=wildcards.variant)
        return inputs

    def precision(self) -> str:
        """The inference's autocast: ``inference.precision``, else the run's training precision."""
        return self.config["inference"]["precision"] or self.config["train"]["precision"]

    def acceleration(self) -> str:
        """How fast the generator runs: ``inference.compile``, and train's cuDNN autotuner and TF32."""
        train = self.config["train"]
        return (f"--compile {self.config['inference']['compile']} --tf32 {train['tf32']}"
                f" --{'' if train['cudnn_benchmark'] else 'no-'}cudnn-benchmark")

    def method(self, wildcards: Wildcards, input) -> str:
        if self.study.learned(wildcards.variant):
            return f"{option('--model', input.model)} --prepared"  # the prepared LR is in the model's units already
        if self.study.external(wildcards.variant):
            return f"{option('--external', input.external)} --scale {self.study.scale_option(wildcards.degradation)}"
        return (f"--interpolate {self.study.variant(wildcards.variant)['mode']}"
                f" --scale {self.study.scale_option(wildcards.degradation)}")


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
        if self.computed(wildcards)[0]:
            inputs["pred"] = [study.path("sr", **lr_set, variant=wildcards.variant, subject=s) for s in subjects]
        if study.external(wildcards.variant) and not study.use_conda:  # rescored when the environment is rebuilt
            inputs["environment"] = study.path("external_env", environment=study.environment(wildcards.variant))
        if self.config["lpips"]["enabled"]:
            inputs["lpips"] = study.path("lpips")
        return inputs

    def computed(self, wildcards: Wildcards) -> tuple[bool, str]:
        """Whether the variant's SR volumes can be made (an outside program needs its environment) and, if not, why."""
        if not self.study.external(wildcards.variant):
            return True, ""
        available, reason = self.study.environment_available(wildcards.variant)
        return available, f"its environment could not be installed: {reason}"

    def file_options(self, wildcards: Wildcards, input) -> str:
        """The subjects and their files, ``--pred`` and the SR volumes or ``--not-computed`` and why. One parameter,
        not ``{input.<name>}`` in the shell: an outside variant's input stays the checkpoint's until it is done
        (Snakemake issue 4312), and asking it first makes this parameter wait too."""
        computed, reason = self.computed(wildcards)
        predictions = option("--pred", *input.pred) if computed else option("--not-computed", reason)
        return " ".join([option("--subjects", *self.test_subjects(wildcards)), option("--gt", *input.gt), predictions,
                         option("--mask", *input.mask), option("--lr", *input.lr)])

    def lpips_options(self, wildcards: Wildcards, input) -> str:
        self.computed(wildcards)  # an outside variant's input is known once its environment's checkpoint is done
        lpips = self.config["lpips"]
        if not lpips["enabled"]:
            return ""
        return f"{option('--lpips-dir', input.lpips)} --lpips-step {lpips['slice_step']} --lpips-sha256 {lpips['sha256']}"


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

    def network(self) -> str:
        return as_json(self.settings_of_config["network"])

    def settings(self, wildcards: Wildcards) -> str:
        seg = self.settings_of_config
        return as_json({**{k: seg[k] for k in SEGMENT_KEYS}, "seed": int(wildcards.seed),
                        "precision": self.config["train"]["precision"]})

    def sr_option(self, wildcards: Wildcards, input) -> str:
        return option("--sr", *input.sr) if wildcards.arm == "real+sr" else ""

    def test_files(self, kind: str) -> list[str]:
        return self.study.hr_files("test", kind=kind)

    def test_segmentations(self) -> list[str]:
        return [self.study.path("segment", file=f"sub-{s}_dseg.nii.gz") for s in self.study.subjects_in("test")]

    def hd95_option(self) -> str:
        return "--hd95" if self.settings_of_config["hd95"] else ""
