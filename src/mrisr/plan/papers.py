"""What each paper shows: its tables (which variants, on which dataset, against which reference), its figures
(which subject, which panels) and the targets of the whole set."""

from __future__ import annotations

from collections.abc import Callable

from mrisr.plan.stages import SEGMENTATION_ARMS, Anatomy, Segment
from mrisr.captions import start_note
from mrisr.commands import command_line
from mrisr.plan.study import Study, Wildcards
from mrisr.scale import as_scale, label

#: a table (csv + md) or figure (png + pdf); the first file is the report item
PAPER_FILES = {"table": ("csv", "md"), "figure": ("png", "pdf")}
COMPARED_PAPERS = ("threeplayer", "disgan")


def labelled_inputs(labels: list[str], paths: list, **columns: list) -> list[dict]:
    """The one form of labelled inputs: records of label, path and any further columns (e.g. sigma)."""
    return [{"label": label, "path": str(p), **{name: values[i] for name, values in columns.items()}}
            for i, (label, p) in enumerate(zip(labels, paths, strict=True))]


class PaperItem:
    """One table or figure (the method tables and the SR figures: one family by wildcards) and what its rule needs:
    ``papers.smk`` makes one rule per item, named ``papers_<rule>``, whose caption is ``workflow/report/<rule>.rst``
    and whose command is ``mrisr papers <command>``."""

    def __init__(self, rule: str, paper: str, name: str, kind: str, command: str, input: Callable,
                 arguments: Callable, facts: dict):
        self.rule, self.paper, self.name, self.kind, self.command = rule, paper, name, kind, command
        self.input = input  # (wildcards) -> {name: path or paths}
        self.arguments = arguments  # (wildcards, input, output) -> the command's option values by name
        #: what its caption says (``snakemake.params.<name>``), each a value or a function of the wildcards; a change
        #: of any reruns it
        self.facts = facts

    def options(self, wildcards: Wildcards, input, output) -> str:
        return command_line(f"papers {self.command}", **self.arguments(wildcards, input, output))


class Papers:
    def __init__(self, study: Study, segment: Segment, anatomy: Anatomy):
        self.study, self.segment, self.anatomy = study, segment, anatomy
        config, self.papers = study.config, study.config["papers"]
        self.out_of_sample: str | None = self.papers["threeplayer"]["out_of_sample"]
        #: paper -> table name -> (dataset, variants)
        self.tables = {paper: {"method_comparison": (study.dataset, self.methods(paper)),
                               "ablation": (study.dataset, study.in_run(self.papers[paper]["ablations"]))}
                       for paper in COMPARED_PAPERS}
        if self.out_of_sample:
            self.tables["threeplayer"]["method_comparison_out_of_sample"] = (self.out_of_sample,
                                                                             self.methods("threeplayer"))
        self.noise_sigmas: list[float] = self.papers["disgan"]["noise_sigmas"]
        self.noise_methods = self.methods("disgan")
        self.noise_inputs = [(sigma, v) for sigma in self.noise_sigmas for v in self.noise_methods]
        self.figure_subject: str = config["figures"]["subject"] or study.subjects_in("test")[0]
        self.figure_title = f"sub-{self.figure_subject}, {study.train_degradation} {label(config['scale'])}"
        self.discrepancy_variants = study.learned_of(study.in_run(self.papers["threeplayer"]["ablations"]))
        self.stripes_variant: str = self.papers["disgan"]["reference"]
        # the README's figure, on the demo: a raw test scan, decimated, through the 3-player paper's reference model
        # (else the first learned one); other datasets' raw scans may be anisotropic, which a model applies to only
        # after --resample
        self.usage_variant: str | None = (
            next(iter(study.learned_of([self.papers["threeplayer"]["reference"]] + study.run_variants)), None)
            if config["datasets"][study.dataset]["source"] == "demo" else None)

    def methods(self, paper: str) -> list[str]:
        return self.study.in_run(self.papers[paper]["methods"])

    def reference(self, paper: str, names: list[str]) -> str:
        """The paper's reference method where it is among ``names``, else ""."""
        return self.papers[paper]["reference"] if self.papers[paper]["reference"] in names else ""

    def reference_label(self, reference: str) -> str | None:
        return self.study.label(reference) if reference else None

    def starts_of(self, variants: list[str]) -> str:
        return start_note({self.study.label(v): self.study.start(v) for v in variants})

    def path(self, paper: str, name: str) -> str:
        return self.study.path("paper", dataset=self.study.dataset, paper=paper, name=name)

    def outputs(self, item: PaperItem, report: Callable) -> dict:
        """An item's files: a table's csv + md or a figure's png + pdf, the first a report item with its caption
        (``report``: Snakemake's, which planning does not import)."""
        first, second = PAPER_FILES[item.kind]
        return {first: report(self.path(item.paper, f"{item.name}.{first}"), caption=f"../report/{item.rule}.rst",
                              category=item.paper, subcategory=item.kind, labels={"name": item.name}),
                second: self.path(item.paper, f"{item.name}.{second}")}

    def log(self, item: PaperItem) -> str:
        return f"results/logs/papers/{self.study.dataset}/{item.paper}/{item.name}_{item.kind}.log"

    def benchmark(self, item: PaperItem) -> str:
        return f"results/benchmarks/papers/{self.study.dataset}/{item.paper}/{item.name}_{item.kind}.tsv"

    def test_n(self) -> int:
        return len(self.study.subjects_in("test"))

    def items(self) -> list[PaperItem]:
        """Every table and figure with a rule of its own (the method tables, and the SR figures of each compared
        paper, one rule by wildcards); ``papers.smk`` makes one rule per item."""
        field, subject, seed = self.study.field, self.figure_subject, self.figure_seed()
        noise = {"variants": self.noise_methods, "sigmas": self.noise_sigmas, "n": self.test_n()}
        segmentation = self.study.config["segmentation"]
        items = [
            PaperItem("method_table", "{paper}", "{table}", "table", "method-table", self.table_input,
                      self.table_arguments, {"variants": self.table_variants, "reference": self.table_reference,
                                             "dataset": self.table_dataset, "n": self.table_n}),
            PaperItem("noise_table", "disgan", "noise", "table", "noise-table", self.noise_table_input,
                      self.noise_table_arguments, {**noise, "reference": self.noise_reference()}),
            PaperItem("noise_figure", "disgan", "noise", "figure", "noise-figure", self.noise_figure_input,
                      self.noise_figure_arguments, noise),
            PaperItem("settings_table", "field", "settings", "table", "settings-table", self.field_table_input,
                      self.field_table_arguments, {"variants": field["variants"], "settings": field["settings"],
                                                   "reference": field["reference"], "n": self.test_n()}),
            PaperItem("settings_figure", "field", "settings", "figure", "settings-figure", self.field_figure_input,
                      self.field_figure_arguments, {"settings": field["settings"]}),
            PaperItem("sr_comparison", "{paper}", "sr_comparison", "figure", "sr-comparison", self.sr_figure_input,
                      self.sr_figure, {"subject": subject}),
            PaperItem("zoom_profile", "{paper}", "zoom_profile", "figure", "zoom-profile", self.sr_figure_input,
                      self.zoom_profile_arguments,
                      {"subject": subject, "length": self.study.config["figures"]["profile_length"]}),
            PaperItem("discrepancy", "threeplayer", "discrepancy", "figure", "discrepancy", self.discrepancy_input,
                      self.discrepancy_arguments, {"variants": self.discrepancy_variants}),
            PaperItem("stripes", "disgan", "stripes", "figure", "stripes", self.stripes_input, self.stripes_arguments,
                      {"variant": self.stripes_variant, "subject": subject, "period": self.stripes_period()}),
            PaperItem("segmentation_table", "augment", "segmentation", "table", "segmentation-table",
                      self.segmentation_scores, self.segmentation_table_arguments,
                      {"n": self.test_n(), "n_train": len(self.study.subjects_in("train")),
                       "sr_variant": segmentation["sr_variant"], "degradation": self.segment.degradation}),
            PaperItem("segmentation_figure", "augment", "segmentation", "figure", "segmentation-figure",
                      self.segmentation_figure_input, self.segmentation_figure_arguments,
                      {"subject": subject, "seed": seed})]
        if self.anatomy.runs:
            anatomy = {"segmenters": self.anatomy.segmenters, "n": self.test_n(),
                       "settings": list(dict.fromkeys(s for s, _ in self.anatomy.cells))}
            items += [
                PaperItem("anatomy_table", "anatomy", "volumes", "table", "anatomy-table", self.anatomy_input,
                          self.anatomy_table_arguments, {**anatomy, "reference": self.study.field["reference"]}),
                PaperItem("anatomy_figure", "anatomy", "bland_altman", "figure", "anatomy-figure", self.anatomy_input,
                          self.anatomy_figure_arguments, anatomy),
                PaperItem("anatomy_slice", "anatomy", "worst_slice", "figure", "anatomy-slice",
                          self.anatomy_slice_input, self.anatomy_slice_arguments, {**anatomy, "subject": subject})]
        if self.usage_variant:  # not a paper's: the README's figure of a model applied to a scan never prepared
            items.append(PaperItem("before_after", "usage", "before_after", "figure", "before-after",
                                   self.before_after_input, self.before_after_arguments,
                                   {"subject": subject, "variant": self.usage_variant}))
        return items

    # method tables

    def table_dataset(self, wildcards: Wildcards) -> str:
        return self.tables[wildcards.paper][wildcards.table][0]

    def table_variants(self, wildcards: Wildcards) -> list[str]:
        return self.tables[wildcards.paper][wildcards.table][1]

    def table_reference(self, wildcards: Wildcards) -> str:
        return self.reference(wildcards.paper, self.table_variants(wildcards))

    def table_input(self, wildcards: Wildcards) -> dict:
        return {"metrics": [self.study.path("metrics", dataset=self.table_dataset(wildcards),
                                            degradation=self.study.train_degradation, variant=v)
                            for v in self.table_variants(wildcards)]}

    def table_arguments(self, wildcards: Wildcards, input, output) -> dict:
        variants = self.table_variants(wildcards)
        inputs = labelled_inputs([self.study.label(v) for v in variants], input,
                                 start=[self.study.start(v) for v in variants])
        return {"inputs": inputs, "reference": self.reference_label(self.table_reference(wildcards)),
                **self.table_files(output)}

    def table_n(self, wildcards: Wildcards) -> int:
        return len(self.study.subjects_in("test", self.table_dataset(wildcards)))

    @staticmethod
    def table_files(output) -> dict[str, str]:
        return {"out_csv": output.csv, "out_md": output.md}

    # the noise experiment

    def noise_degradation(self, sigma: float) -> str:
        """The LR set of the noise experiment at ``sigma``: the training degradation plus Gaussian noise."""
        train = self.study.train_degradation
        return train if sigma == 0 else f"{train}-noise{sigma:g}"

    def noise_reference(self) -> str:
        return self.reference("disgan", self.noise_methods)

    def noise_table_input(self, wildcards: Wildcards) -> dict:
        return {"metrics": [self.study.path("metrics", dataset=self.study.dataset,
                                            degradation=self.noise_degradation(s), variant=v)
                            for s, v in self.noise_inputs]}

    def noise_table_arguments(self, wildcards: Wildcards, input, output) -> dict:
        inputs = labelled_inputs([self.study.label(v) for _, v in self.noise_inputs], input,
                                 sigma=[s for s, _ in self.noise_inputs])
        return {"inputs": inputs, "reference": self.reference_label(self.noise_reference()), **self.table_files(output)}

    def noise_figure_input(self, wildcards: Wildcards) -> dict:
        return {"table": self.path("disgan", "noise.csv")}

    def noise_figure_arguments(self, wildcards: Wildcards, input, output) -> dict:
        return {"table": input.table, "out": output.png}

    # the settings table

    def field_path(self, name: str) -> str:
        return self.path("field", name)

    def field_table_input(self, wildcards: Wildcards | None = None) -> dict:
        return {"metrics": [self.study.path("metrics", dataset=self.study.dataset, degradation=s, variant=v)
                            for s, v in self.study.field_cells()]}

    def field_table_arguments(self, wildcards: Wildcards, input, output) -> dict:
        cells = self.study.field_cells()
        inputs = labelled_inputs([self.study.label(v) for _, v in cells], input, setting=[s for s, _ in cells],
                                 description=[self.study.describe_setting(s) for s, _ in cells])
        return {"inputs": inputs, "reference": self.reference_label(self.study.field["reference"]),
                "published": self.study.field["published"], **self.table_files(output)}

    def field_figure_input(self, wildcards: Wildcards) -> dict:
        return {"table": self.field_path("settings.csv")}

    def field_figure_arguments(self, wildcards: Wildcards, input, output) -> dict:
        return {"table": input.table, "out": output.png}

    # figures of one subject

    def figure_hr(self, kind: str) -> str:
        return self.study.path("hr", dataset=self.study.dataset, subject=self.figure_subject, kind=kind)

    def figure_sr(self, variant: str, entry: str = "sr") -> str:
        return self.study.path(entry, dataset=self.study.dataset, degradation=self.study.train_degradation,
                               variant=variant, subject=self.figure_subject)

    def sr_figure_input(self, wildcards: Wildcards) -> dict:
        return {"lr": self.study.path("lr", dataset=self.study.dataset, degradation=self.study.train_degradation,
                                      subject=self.figure_subject),
                "sr": [self.figure_sr(v) for v in self.methods(wildcards.paper)],
                "gt": self.figure_hr("T1w"), "mask": self.figure_hr("mask")}

    def sr_figure(self, wildcards: Wildcards, input, output) -> dict:
        """The SR comparison's arguments, which the zoomed profile shares: the panels (LR, methods, GT), mask, scale,
        zoom, title and output."""
        labels = ["LR", *map(self.study.label, self.methods(wildcards.paper)), "GT"]
        return {"inputs": labelled_inputs(labels, [input.lr, *input.sr, input.gt]), "mask": input.mask,
                "scale": self.study.scale, "zoom": self.study.config["figures"]["zoom"],
                "title": f"{self.figure_title}\n{self.starts_of(self.methods(wildcards.paper))}", "out": output.png}

    def zoom_profile_arguments(self, wildcards: Wildcards, input, output) -> dict:
        return {**self.sr_figure(wildcards, input, output), "length": self.study.config["figures"]["profile_length"]}

    def discrepancy_input(self, wildcards: Wildcards | None = None) -> dict:
        return {"logs": [self.study.path("train_log", dataset=self.study.dataset, variant=v)
                         for v in self.discrepancy_variants]}

    def discrepancy_arguments(self, wildcards: Wildcards, input, output) -> dict:
        return {"inputs": labelled_inputs([self.study.label(v) for v in self.discrepancy_variants], input),
                "out": output.png}

    def stripes_period(self) -> int:
        return self.papers["disgan"]["pasted_tile"] * max(as_scale(self.study.config["scale"]))

    def stripes_input(self, wildcards: Wildcards) -> dict:
        return {"gt": self.figure_hr("T1w"), "mask": self.figure_hr("mask"),
                "blended": self.figure_sr(self.stripes_variant), "pasted": self.figure_sr(self.stripes_variant, "sr_pasted")}

    def stripes_arguments(self, wildcards: Wildcards, input, output) -> dict:
        return {"gt": input.gt, "blended": input.blended, "pasted": input.pasted, "mask": input.mask,
                "period": self.stripes_period(), "label": self.stripes_variant, "title": self.figure_title,
                "out": output.png}

    # the segmentation study

    def segmentation_scores(self, wildcards: Wildcards | None = None) -> dict[str, list[str]]:
        seeds = self.study.config["segmentation"]["seeds"]
        return {arm: [self.study.path("segment", dataset=self.study.dataset, arm=arm, seed=seed, file="scores.csv")
                      for seed in seeds] for arm in SEGMENTATION_ARMS}

    def segmentation_table_arguments(self, wildcards: Wildcards, input, output) -> dict:
        inputs = labelled_inputs([arm for arm in SEGMENTATION_ARMS for _ in input[arm]],
                                 [p for arm in SEGMENTATION_ARMS for p in input[arm]])
        return {"inputs": inputs, **self.table_files(output)}

    def figure_seed(self) -> int:
        return self.study.config["segmentation"]["seeds"][0]

    def segmentation_figure_input(self, wildcards: Wildcards) -> dict:
        arms = [self.study.path("segment", dataset=self.study.dataset, arm=arm, seed=self.figure_seed(),
                                file=f"sub-{self.figure_subject}_dseg.nii.gz") for arm in SEGMENTATION_ARMS]
        return {"image": self.figure_hr("T1w"), "label": self.figure_hr("dseg"), "mask": self.figure_hr("mask"),
                "arms": arms}

    def segmentation_figure_arguments(self, wildcards: Wildcards, input, output) -> dict:
        return {"image": input.image, "label": input.label, "mask": input.mask,
                "inputs": labelled_inputs(list(SEGMENTATION_ARMS), input.arms),
                "classes": self.study.config["segmentation"]["classes"],
                "title": f"sub-{self.figure_subject}, seed {self.figure_seed()}", "out": output.png}

    # does SR keep anatomy true

    def anatomy_input(self, wildcards: Wildcards | None = None) -> dict:
        return {"volumes": [self.anatomy.cell_path(s, v) for s, v in self.anatomy.cells]}

    def anatomy_inputs(self, paths: list[str], **columns: list) -> list[dict]:
        cells = self.anatomy.cells
        return labelled_inputs([self.study.label(v) for _, v in cells], paths, setting=[s for s, _ in cells],
                               description=[self.study.describe_setting(s) for s, _ in cells], **columns)

    def anatomy_table_arguments(self, wildcards: Wildcards, input, output) -> dict:
        return {"inputs": self.anatomy_inputs(list(input.volumes)),
                "reference": self.reference_label(self.study.field["reference"]), **self.table_files(output)}

    def anatomy_figure_arguments(self, wildcards: Wildcards, input, output) -> dict:
        return {"inputs": self.anatomy_inputs(list(input.volumes)), "out": output.png}

    def anatomy_labels(self, setting: str, variant: str) -> list[str]:
        return [self.study.path("anatomy", dataset=self.study.dataset, degradation=setting, variant=variant,
                                file=f"{segmenter}/sub-{self.figure_subject}_dseg.nii.gz")
                for segmenter in self.anatomy.segmenters]

    def anatomy_slice_input(self, wildcards: Wildcards | None = None) -> dict:
        return {**self.anatomy_input(), "image": self.figure_hr("T1w"),
                "hr_labels": [self.study.path("anatomy_hr", dataset=self.study.dataset,
                                              file=f"{segmenter}/sub-{self.figure_subject}_dseg.nii.gz")
                              for segmenter in self.anatomy.segmenters],
                "labels": [p for s, v in self.anatomy.cells for p in self.anatomy_labels(s, v)]}

    def anatomy_slice_arguments(self, wildcards: Wildcards, input, output) -> dict:
        labels = [self.anatomy_labels(s, v) for s, v in self.anatomy.cells]
        return {"inputs": self.anatomy_inputs(list(input.volumes), label_maps=labels),
                "segmenter_names": self.anatomy.segmenters, "hr_image": input.image, "hr_labels": list(input.hr_labels),
                "subject": self.figure_subject, "out": output.png}

    # the README's figure

    def before_after_input(self, wildcards: Wildcards | None = None) -> dict[str, str]:
        study, subject = self.study, self.figure_subject
        return {"lr": study.path("scan_lr", dataset=study.dataset, subject=subject),
                "sr": study.path("scan_sr", dataset=study.dataset, subject=subject, variant=self.usage_variant),
                "hr": study.raw_files()[subject]["T1w"]}

    def before_after_arguments(self, wildcards: Wildcards, input, output) -> dict:
        title = (f"sub-{self.figure_subject}'s raw scan (not prepared), {self.study.train_degradation} "
                 f"{label(self.study.config['scale'])}, through the {self.study.label(self.usage_variant)} model card")
        return {"lr": input.lr, "sr": input.sr, "hr": input.hr, "title": title, "out": output.png}

    def files(self) -> list[tuple[str, str]]:
        """(paper, file name) of every table and figure this run makes."""
        tables = [(paper, f"{name}.{ext}") for paper, names in self.tables.items()
                  for name, (_, variants) in names.items() if variants for ext in PAPER_FILES["table"]]
        stripes = bool(self.study.learned_of(self.study.in_run([self.stripes_variant])))
        return (tables
                + [(p, "sr_comparison.png") for p in COMPARED_PAPERS if self.methods(p)]
                + [("threeplayer", "discrepancy.png")] * bool(self.discrepancy_variants)
                + [("threeplayer", "zoom_profile.png")] * bool(self.methods("threeplayer"))
                + [("disgan", name) for name in ("noise.csv", "noise.md", "noise.png")] * bool(self.noise_methods)
                + [("disgan", "stripes.png")] * stripes
                + [("augment", name) for name in ("segmentation.csv", "segmentation.md", "segmentation.png")]
                * self.segment.runs
                + [("usage", "before_after.png")] * bool(self.usage_variant)
                + [("anatomy", name) for name in ("volumes.csv", "volumes.md", "bland_altman.png", "worst_slice.png")]
                * self.anatomy.runs
                + [("field", name) for name in ("settings.csv", "settings.md", "settings.png")]
                * bool(self.study.field_settings))

    def targets(self) -> list[str]:
        return [self.path(paper, name) for paper, name in self.files()]
