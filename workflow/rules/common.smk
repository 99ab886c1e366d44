# What every stage needs: the validated config, one table of results paths and the plan made from both; and the
# plan written down (results/plan.yaml).

import os
from pathlib import Path

import yaml

from snakemake_interface_executor_plugins.settings import DeploymentMethod

from mrisr import config as mrisr_config
from mrisr.plan import Plan

mrisr_config.on_base(config, os.path.join(workflow.basedir, "config.yaml"))  # overlays change values only
mrisr_config.validate(config)  # against the schema inside the package (workflow/schemas links to it)

ENV = "../../envs/mrisr.yaml"
# --use-conda: the env's post-deploy script (envs/mrisr.post-deploy.sh) installs mrisr from this checkout
os.environ.update(MRISR_CHECKOUT=workflow.basedir)  # set here, not read: no envvars directive


wildcard_constraints:
    dataset=r"[A-Za-z0-9_-]+",
    subject=r"[A-Za-z0-9]+",
    variant=r"[A-Za-z0-9_-]+(@[A-Za-z0-9_.-]+)?",  # <variant>@<setting>: trained on a field setting
    degradation=r"[A-Za-z0-9_.-]+",
    generator=r"[A-Za-z0-9_-]+(@[A-Za-z0-9_.-]+)?",
    environment=r"[A-Za-z0-9_.-]+",


#: Every results path, one folder per stage; inputs and outputs alike take them from here through `path`.
PATHS = {
    "raw": "results/fetch/{dataset}/sub-{subject}/sub-{subject}_{kind}.nii.gz",
    "bids_index": "results/fetch/{dataset}/bids_index",  # a BIDS dataset's index, kept between plans
    "ixi_archive": "results/fetch/{dataset}/IXI-T1.tar",
    "download": "results/fetch/downloads/{name}",
    "lpips": "results/fetch/lpips",
    "hr": "results/prepare/{dataset}/sub-{subject}/sub-{subject}_{kind}.nii.gz",
    "lr": "results/degrade/{dataset}/{degradation}/sub-{subject}_T1w.nii.gz",
    "scan_lr": "results/degrade/{dataset}/scan/sub-{subject}_acq-lr_T1w.nii.gz",  # a raw scan made a user's LR scan
    "pretrained": "results/pretrain/{dataset}/{generator}/model.safetensors",
    "pretrain_log": "results/pretrain/{dataset}/{generator}/train_log.csv",
    "model": "results/train/{dataset}/{variant}/model.safetensors",
    "train_log": "results/train/{dataset}/{variant}/train_log.csv",
    "external_env": "results/external/env/{environment}",  # an outside program's venv and status.json
    "external_out": "results/external/{dataset}/{degradation}/{variant}/sub-{subject}",  # what the program wrote
    "sr": "results/super_resolve/{dataset}/{degradation}/{variant}/sub-{subject}_T1w.nii.gz",
    "scan_sr": "results/super_resolve/{dataset}/scan/{variant}/sub-{subject}_acq-sr_T1w.nii.gz",
    "sr_pasted": "results/super_resolve/{dataset}/{degradation}/{variant}/pasted/sub-{subject}_T1w.nii.gz",
    "metrics": "results/evaluate/{dataset}/{degradation}/{variant}.csv",
    "model_card": "results/evaluate/{dataset}/model_cards/{variant}.safetensors",
    "segment": "results/segment/{dataset}/{arm}/seed-{seed}/{file}",
    "anatomy_hr": "results/anatomy/{dataset}/hr/{file}",  # the HR volumes' label maps and class volumes
    "anatomy": "results/anatomy/{dataset}/sr/{degradation}/{variant}/{file}",  # an SR set's, against the HR's
    "paper": "results/papers/{dataset}/{paper}/{name}",
    "plan": "results/plan.yaml",  # mrisr plan: what this run is
}


#: Each stage's cluster sizes (CPUs per GPU, memory, time) from the workflow profile, by stage name: rules written
#: in a loop over subject sets have names of their own, which the profile's set-resources cannot name.
STAGE_RESOURCES = yaml.safe_load(Path(workflow.basedir, "workflow/profiles/default/config.v8+.yaml").read_text())[
    "set-resources"
]

#: Every decision the workflow makes from the config (mrisr.plan); rule files read their stage's part.
PLAN = Plan(
    config, PATHS, workflow.basedir, use_conda=DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method
)
path = PLAN.study.path


rule plan:
    """What this run is, written at every change of its config: splits, variants, training, jobs per rule, outputs."""
    output:
        report(path("plan"), caption="../report/plan.rst", category="Plan"),
    log:
        "results/logs/plan.log",
    localrule: True
    conda:
        ENV
    params:
        options=PLAN.options,
    shell:
        "mrisr plan {params.options} > {log:q} 2>&1"
