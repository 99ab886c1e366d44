"""Every job a complete run makes, by rule: what ``rule all`` asks for, followed back through each stage's inputs as
the rule files declare them. ``mrisr plan`` counts them (a test holds the counts to Snakemake's dry run), so that a
lab sees what a run will do before it spends GPU-days on it."""

from __future__ import annotations

from collections import defaultdict

from mrisr.plan.stages import SEGMENTATION_ARMS


class Jobs:
    """The jobs of one plan, each rule's as a set of its wildcards (tuples); built from the targets backwards."""

    def __init__(self, plan):
        self.plan, self.study = plan, plan.study
        self.by_rule: dict[str, set[tuple]] = defaultdict(set)
        #: (rule, wildcards) of the jobs that exist once an outside program's environment is known (its checkpoint)
        self.after_checkpoint: set[tuple] = set()
        self._papers()
        dataset = self.study.dataset
        for subject in self.study.subjects():
            self.hr(dataset, subject)
        for degradation in self.study.main_lr_sets():
            for variant in self.study.run_variants:
                for subject in self.study.subjects_in("test"):
                    self.sr(dataset, degradation, variant, subject)
        for variant in self.study.learned_of(self.study.run_variants):
            self.add("evaluate_model_card", dataset, variant)
            self.model(variant)
            self.metrics(dataset, self.study.train_degradation, variant)
        self.add("plan")
        self.add("all")

    def add(self, rule: str, *wildcards) -> bool:
        """Whether the job is new (its inputs are then to be followed)."""
        jobs = self.by_rule[rule]
        new = wildcards not in jobs
        jobs.add(wildcards)
        return new

    def counts(self, before_checkpoints: bool = False) -> dict[str, int]:
        """Jobs per rule; ``before_checkpoints``: without those that wait for an outside environment's checkpoint,
        as Snakemake's dry run lists them before it has run."""
        left = {rule: {w for w in jobs if (rule, *w) not in self.after_checkpoint} if before_checkpoints else jobs
                for rule, jobs in sorted(self.by_rule.items())}
        return {rule: len(jobs) for rule, jobs in left.items() if jobs}

    # inputs, followed back

    def raw(self, dataset: str, subject: str) -> None:
        source = self.study.config["datasets"][dataset]["source"]
        if source == "demo":
            self.add(self.plan.fetch.demo_rule(dataset))
        elif source == "hcp":
            self.add("fetch_hcp", dataset, subject)
        elif source == "ixi" and self.add(f"fetch_ixi_{dataset}"):
            self.add("fetch_ixi_archive", dataset)  # folder and BIDS datasets are read in place

    def hr(self, dataset: str, subject: str) -> None:
        rule = "prepare" if self.study.labelled(dataset) else "prepare_unlabelled"
        if self.add(rule, dataset, subject):
            self.raw(dataset, subject)

    def hr_of(self, split: str, dataset: str) -> None:
        for subject in self.study.subjects_in(split, dataset):
            self.hr(dataset, subject)

    def lr(self, dataset: str, degradation: str, subject: str) -> None:
        subject_set = self.study.set_of(dataset, subject)
        if self.add(f"degrade_{subject_set.name}", degradation):
            for each in subject_set.subjects:
                self.hr(dataset, each)

    def model(self, variant: str) -> None:
        """A trained variant's model (and train log), on the run's dataset."""
        study, dataset = self.study, self.study.dataset
        if not self.add("train", dataset, variant):
            return
        self.hr_of("train", dataset)
        if study.pretrained(variant):
            self.add("pretrain", dataset, study.generator_key(variant))
        weights = study.variant(variant).get("feature_extractor", {}).get("weights")
        if weights in study.config["downloads"] and study.variant(variant)["losses"]["feature"] > 0:
            self.add("fetch_download", weights)

    def sr(self, dataset: str, degradation: str, variant: str, subject: str, pasted: bool = False) -> None:
        """The job that makes a subject's SR volume: its subject set's (every subject of it), or the pasted tiles'."""
        study = self.study
        if pasted:
            rule, wildcards, subjects = "super_resolve_pasted", (dataset, degradation, variant, subject), [subject]
        else:
            subject_set = study.set_of(dataset, subject)
            rule, wildcards, subjects = f"super_resolve_{subject_set.name}", (degradation, variant), subject_set.subjects
        if not self.add(rule, *wildcards):
            return
        for each in subjects:
            self.lr(dataset, degradation, each)
            self.hr(dataset, each)
            if study.external(variant):
                self.after_checkpoint.add(("external_run", dataset, degradation, variant, each))
                self.add("external_run", dataset, degradation, variant, each)
        if study.learned(variant):
            self.model(variant)
        if study.external(variant):
            self.after_checkpoint.add((rule, *wildcards))
            self.environment(variant)

    def environment(self, variant: str) -> None:
        if not self.study.use_conda:
            self.add("external_environment", self.study.environment(variant))

    def metrics(self, dataset: str, degradation: str, variant: str) -> None:
        study = self.study
        if not self.add("evaluate", dataset, degradation, variant):
            return
        for subject in study.subjects_in("test", dataset):
            self.hr(dataset, subject)
            self.lr(dataset, degradation, subject)
            self.sr(dataset, degradation, variant, subject)
        if study.external(variant):
            self.environment(variant)
        if study.config["lpips"]["enabled"]:
            self.add("fetch_lpips")

    # what the papers show

    def _papers(self) -> None:
        study, papers, dataset = self.study, self.plan.papers, self.study.dataset
        subject, train = papers.figure_subject, study.train_degradation
        for paper, names in papers.tables.items():
            for name, (table_dataset, variants) in names.items():
                if variants:
                    self.add("papers_method_table", paper, name)
                    for variant in variants:
                        self.metrics(table_dataset, train, variant)
        for paper in ("threeplayer", "disgan"):
            if papers.methods(paper):
                figures = ["papers_sr_comparison"] + ["papers_zoom_profile"] * (paper == "threeplayer")
                for rule in figures:
                    self.add(rule, paper)
                self.lr(dataset, train, subject)
                self.hr(dataset, subject)
                for variant in papers.methods(paper):
                    self.sr(dataset, train, variant, subject)
        if papers.discrepancy_variants:
            self.add("papers_discrepancy")
            for variant in papers.discrepancy_variants:
                self.model(variant)
        if papers.noise_methods:
            self.add("papers_noise_table")
            self.add("papers_noise_figure")
            for sigma, variant in papers.noise_inputs:
                self.metrics(dataset, papers.noise_degradation(sigma), variant)
        if study.learned_of(study.in_run([papers.stripes_variant])):
            self.add("papers_stripes")
            self.hr(dataset, subject)
            self.sr(dataset, train, papers.stripes_variant, subject)
            self.sr(dataset, train, papers.stripes_variant, subject, pasted=True)
        if self.plan.segment.runs:
            self._segmentation()
        if papers.usage_variant:
            self.add("papers_before_after")
            self.add("degrade_scan", dataset, subject)
            self.raw(dataset, subject)
            self.add("super_resolve_scan", dataset, papers.usage_variant, subject)
            self.model(papers.usage_variant)
        if self.plan.anatomy.runs:
            self._anatomy()
        if study.field_settings:
            self.add("papers_settings_table")
            self.add("papers_settings_figure")
            for setting, variant in study.field_cells():
                self.metrics(dataset, setting, variant)

    def _segmentation(self) -> None:
        study, segment, dataset = self.study, self.plan.segment, self.study.dataset
        self.add("papers_segmentation_table")
        self.add("papers_segmentation_figure")
        self.hr(dataset, self.plan.papers.figure_subject)
        for arm in SEGMENTATION_ARMS:
            for seed in study.config["segmentation"]["seeds"]:
                self.add("segment_train", dataset, arm, seed)
                self.add("segment_evaluate", dataset, arm, seed)
        self.hr_of("train", dataset)
        self.hr_of("test", dataset)
        for subject in study.subjects_in("train", dataset):
            self.sr(dataset, segment.degradation, study.config["segmentation"]["sr_variant"], subject)

    def _anatomy(self) -> None:
        study, anatomy, dataset = self.study, self.plan.anatomy, self.study.dataset
        for rule in ("papers_anatomy_table", "papers_anatomy_figure", "papers_anatomy_slice"):
            self.add(rule)
        self.add("anatomy_hr")
        self.hr_of("test", dataset)
        if "network" in anatomy.segmenters:
            self.add("segment_train", dataset, "real", study.config["segmentation"]["seeds"][0])
        for setting, variant in anatomy.cells:
            self.add(anatomy.rule(setting))
            for subject in study.subjects_in("test", dataset):
                self.lr(dataset, setting, subject)
                self.sr(dataset, setting, variant, subject)
            if study.external(variant):
                self.environment(variant)
