#!/usr/bin/env bash
# The device check, one call on a lent GPU machine (under 8 minutes), from the repository root:
#   whole-volume inference of an HCP-size LR volume with the paper generator (time, peak memory, max |Δ|);
#   the paper-size 3-player and DISGAN training step (s/step, the generator's share of the card's dense bf16
#   peak), bf16 against fp32 on the same step; a short real training on the demo at paper network sizes.
# Each appends its entry to benchmarks/README.md, which comes back in $OUT.
# The machine's image has torch but not all of mrisr's needs: carry `.whl` (nibabel, jsonschema and its
# needs, for Python 3.12) and `.gpudata/results` (the demo's prepare/demo and degrade/demo/nearest folders).
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH="/tmp/site:$PWD/src" PYTHONUNBUFFERED=1
OUT=${OUT:-$(mktemp -d)}
trap "cp $PWD/benchmarks/README.md \"\$OUT/README.md\"" EXIT
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c 'import torch; print("torch", torch.__version__)'
cd benchmarks
# HCP T1w: 0.7 mm, 260 x 311 x 260; cropped to even edges, its x2 LR is 130 x 155 x 130.
timeout 150 python3 inference.py --shape 130 155 130 --methods one_pass ours --threads 16 2>&1 | tee "$OUT/inference.log"
timeout 170 python3 train_step.py --paper-sizes --patch-size 64 --batch-size 4 --steps 5 --fp32 --threads 16 \
    --variants threeplayer disgan 2>&1 | tee "$OUT/train_step.log"
timeout 150 python3 demo_training.py --results ../.gpudata/results --seconds 90 2>&1 | tee "$OUT/demo_training.log"
