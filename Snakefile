# mrisr: GAN super-resolution of 3D brain MRI, reproduced end to end.
# This file is the table of contents. A stage has one name in four places: workflow/rules/<stage>.smk, the
# command `mrisr <stage>`, the package module mrisr.<stage> and the folder results/<stage>/.

from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/fetch.smk"
include: "workflow/rules/prepare.smk"
include: "workflow/rules/degrade.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/external.smk"
include: "workflow/rules/super_resolve.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/segment.smk"
include: "workflow/rules/anatomy.smk"
include: "workflow/rules/papers.smk"


rule all:
    default_target: True
    input:
        PLAN.targets(),
