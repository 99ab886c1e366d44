# mrisr: GAN super-resolution of 3D brain MRI, reproduced end to end.
# This file is the table of contents; each stage lives in workflow/rules/<stage>.smk and calls the
# `mrisr` command line, whose code is in src/mrisr.

from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/degrade.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/infer.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/segment.smk"
include: "workflow/rules/papers.smk"


rule all:
    input:
        data_targets(),
        sr_targets(),
        paper_targets(),
        segmentation_targets(),
    default_target: True
