#!/usr/bin/env bash
# Snakemake runs this in the env once it has created it (--use-conda): mrisr itself, installed editable from the
# checkout whose Snakefile asked for the env (common.smk exports its path as MRISR_CHECKOUT). Not a pip line in
# mrisr.yaml: conda runs pip from the folder Snakemake copies that file to, under .snakemake/conda/.
set -euo pipefail
: "${MRISR_CHECKOUT:?is set by the workflow (workflow/rules/common.smk); run this env through its Snakefile}"
python -m pip install --quiet --no-deps --editable "$MRISR_CHECKOUT"
python -m pip install --quiet --no-deps -r "$MRISR_CHECKOUT/envs/no-deps.txt"  # their bounds conflict with the pins
