"""Every decision the workflow makes from its config, pure: config in, plain values out.

``common.smk`` makes one :class:`Plan` from the validated config and its results-path table; each rule file reads
its stage's part (``PLAN.train``, ``PLAN.papers``, ...) in one-line calls. Planning imports neither torch nor
Snakemake, so every ``snakemake`` start (and every cluster job's) plans without loading a network library, and it
is tested without running Snakemake.
"""

from __future__ import annotations

from pathlib import Path

from mrisr.commands import command_line
from mrisr.plan.papers import Papers
from mrisr.plan.stages import (Anatomy, Degrade, Evaluate, External, Fetch, Prepare, Pretrain, Segment, SuperResolve,
                               Train)
from mrisr.plan.study import Study


class Plan:
    """The study's facts and each stage's decisions."""

    def __init__(self, config: dict, paths: dict[str, str], basedir: str | Path = ".", use_conda: bool = False):
        self.study = Study(config, paths, basedir, use_conda)
        self.fetch = Fetch(self.study)
        self.prepare = Prepare(self.study)
        self.degrade = Degrade(self.study)
        self.pretrain = Pretrain(self.study)
        self.train = Train(self.study)
        self.external = External(self.study)
        self.super_resolve = SuperResolve(self.study)
        self.evaluate = Evaluate(self.study)
        self.segment = Segment(self.study)
        self.anatomy = Anatomy(self.study, self.segment)
        self.papers = Papers(self.study, self.segment, self.anatomy)

    def targets(self) -> list[str]:
        """What ``rule all`` asks for: the plan, the prepared volumes, every SR volume, the model cards, the papers'
        outputs."""
        return ([self.study.path("plan")] + self.prepare.targets() + self.super_resolve.targets()
                + self.evaluate.model_card_targets() + self.papers.targets())

    def options(self, wildcards, output) -> str:
        """``mrisr plan`` of this very config, written where ``rule plan`` says."""
        return command_line("plan", config_json=self.study.config, directory=str(self.study.basedir), out=output[0])
