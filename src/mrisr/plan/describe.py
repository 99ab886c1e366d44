"""``mrisr plan``: the study a config describes, as a readable, stable, diffable document (YAML, or JSON for tools):
its datasets and splits, LR sets, variants and where each starts, the training runs and their steps, the jobs per
rule, and each paper's outputs. The workflow writes it to ``results/plan.yaml``; a lab reads it (or diffs two) before
it spends GPU-days, as nnU-Net's plans file is read before training."""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import yaml

from mrisr import __version__
from mrisr.config import merge, on_base, validate
from mrisr.errors import InputError
from mrisr.io import write_text
from mrisr.plan.jobs import Jobs
from mrisr.plan.study import parse_degradation
from mrisr.scale import label

#: Where the workflow keeps its one table of results paths.
PATHS_FILE = Path("workflow/rules/common.smk")


def paths_of(directory: str | Path) -> dict[str, str]:
    """The results-path table of the workflow in ``directory`` (``PATHS`` of its ``common.smk``), read as data."""
    path = Path(directory) / PATHS_FILE
    found = re.search(r"^PATHS = (\{.*?^\})", path.read_text(), re.S | re.M) if path.is_file() else None
    if found is None:
        raise InputError(path, "holds no PATHS table",
                         "run mrisr plan in the workflow's folder, or name that folder as its directory")
    return ast.literal_eval(found.group(1))


def run_length(train: dict) -> dict:
    """How long a training runs and on what: its steps (or epochs of the grid) and its batch over its GPUs."""
    length = {"steps": train["steps"]} if train["epochs"] is None else {
        "epochs": train["epochs"], "steps": "counted from the volumes", "window_fraction": train["window_fraction"]}
    return length | {"global_batch": train["batch_size"], "gpus": train["gpus"]}


def describe(plan) -> dict:
    """The plan as plain data, in a fixed order (so that two plans diff line by line)."""
    study, config = plan.study, plan.study.config
    jobs = Jobs(plan)
    counts, listed = jobs.counts(), jobs.counts(before_checkpoints=True)
    datasets = {}
    for dataset in study.datasets():
        splits = study.splits(dataset)
        datasets[dataset] = {"source": config["datasets"][dataset]["source"], "subjects": len(splits),
                             **{part: [s for s, p in splits.items() if p == part] for part in ("train", "val", "test")
                                if part in splits.values()}}
    lr_sets = {}
    made = {wildcards[0] for s in study.subject_sets for wildcards in jobs.by_rule.get(f"degrade_{s.name}", ())}
    for name in sorted(made):
        entry, sigma = parse_degradation(name, config["degradations"])
        lr_sets[name] = {"method": entry["method"], "scale": label(study.scale_of(name)), "noise_sigma": sigma}
    variants = {name: {"kind": study.variant(name)["kind"], "label": study.label(name),
                       **({"start": study.start(name)} if study.learned(name) else {})}
                for name in dict.fromkeys(study.run_variants + study.field_variants())}
    training = {
        "pretrain": {key: {"steps": plan.pretrain.settings(SimpleNamespace(generator=key))["steps"], "setting": setting}
                     for key, (_, _, setting) in sorted(plan.pretrain.generators().items())
                     if (study.dataset, key) in jobs.by_rule["pretrain"]},
        "train": {variant: run_length(study.training(variant)) | {"setting": study.setting(variant)}
                  for _, variant in sorted(jobs.by_rule["train"])}}
    if plan.segment.runs:
        seg = config["segmentation"]
        training["segmentation"] = {"arms": ["real", "real+sr"], "seeds": seg["seeds"], "steps": seg["steps"],
                                    "sr_variant": seg["sr_variant"], "degradation": plan.segment.degradation}
    outputs: dict[str, list[str]] = {}
    for paper, name in plan.papers.files():
        outputs.setdefault(paper, []).append(name)
    return {"mrisr": __version__, "dataset": study.dataset, "scale": label(study.scale),
            "train_degradation": study.train_degradation, "datasets": datasets, "lr_sets": lr_sets,
            "field_settings": {s: study.describe_setting(s) for s in study.field_settings}, "variants": variants,
            "training": training,
            "jobs": {**counts, "total": sum(counts.values())},
            # of those, the jobs that Snakemake lists only once an outside program's environment is built
            "jobs_after_environments": {rule: n - listed.get(rule, 0) for rule, n in counts.items()
                                        if n != listed.get(rule, 0)},
            "outputs": {paper: sorted(names) for paper, names in sorted(outputs.items())}}


class _Dumper(yaml.SafeDumper):
    """One key a line (a change is a line of the diff); a list of plain values (subjects, files) on its key's line."""


_Dumper.add_representer(list, lambda dumper, items: dumper.represent_sequence(
    "tag:yaml.org,2002:seq", items, flow_style=not any(isinstance(i, (dict, list)) for i in items)))


def as_text(described: dict, form: str) -> str:
    if form == "json":
        return json.dumps(described, indent=2) + "\n"
    return ("# mrisr plan: what `snakemake` runs with this config; `jobs` counts each rule's jobs of a complete run\n"
            + yaml.dump(described, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120))


def print_plan(configfile: list[str] | None, config_json: dict | None, directory: str, format: str,
               out: str | None) -> None:
    """The command: the config as Snakemake would have it (``directory``'s ``config.yaml`` under the ``configfile``
    overlays, in order; or ``config_json``, the workflow's own), its plan printed or written to ``out``."""
    from mrisr.plan import Plan

    if config_json is not None:
        config = config_json
    else:
        config = {}
        for overlay in configfile or []:
            merge(config, yaml.safe_load(Path(overlay).read_text()) or {})
        on_base(config, Path(directory) / "config.yaml")
    plan = Plan(validate(config), paths_of(directory), directory)
    text = as_text(describe(plan), format)
    if out:
        write_text(text, out)
    else:
        sys.stdout.write(text)
