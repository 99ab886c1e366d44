#!/usr/bin/env bash
# The device check, one call on a lent GPU machine (under 8 minutes), from the repository root; each step has its
# own time limit, so that one that overruns costs only itself:
#   whole-volume inference of an HCP-size LR volume with the paper generator: one pass, ours, ours with cuDNN's
#   autotuner, ours compiled (time, first-run time, peak memory, max |Δ|);
#   a training batch's data (patches drawn, degraded by each of the config's degradations) on the CPU and the GPU;
#   the paper-size 3-player and DISGAN training steps: plain fp32 against ours in bf16, fp32 (TF32 convolutions,
#   PyTorch's default), IEEE fp32, fp32 + TF32 matrix multiplies; the generator's share of the card's dense bf16
#   peak before the switches (ours) and a profile of its operators;
#   the 3-player step with cuDNN's autotuner, compiled (default mode) and with CUDA graphs (reduce-overhead), and
#   the generator's share after them;
#   what the paper run (authors.yaml + hcp.yaml) costs in GPU hours on this card.
# Each appends its entry to benchmarks/README.md, which comes back in $OUT. The machine's image has torch but not
# all of mrisr's needs: carry `.whl` (wheels for its Python 3.12), made here by `bash benchmarks/gpu_carry.sh`.
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH="/tmp/site:$PWD/src" PYTHONUNBUFFERED=1
OUT=${OUT:-$(mktemp -d)}
trap "cp $PWD/benchmarks/README.md \"\$OUT/README.md\"" EXIT
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv
python3 -c 'import torch; print("torch", torch.__version__)'
cd benchmarks
# HCP T1w: 0.7 mm, 260 x 311 x 260; cropped to even edges, its x2 LR is 130 x 155 x 130.
timeout 100 python3 inference.py --shape 130 155 130 --methods one_pass ours ours_autotuned ours_compiled \
    --threads 16 --method-timeout 40 2>&1 | tee "$OUT/inference.log"
timeout 30 python3 data_step.py --threads 1 8 --repeat 5 2>&1 | tee "$OUT/data_step.log"
# cuDNN keeps one algorithm per convolution shape for the whole process, autotuned or not: the autotuned steps run
# in a process of their own, so that neither side reuses the other's picks.
timeout 90 python3 train_step.py --paper-sizes --patch-size 64 --batch-size 4 --steps 5 --threads 16 \
    --variants threeplayer disgan --configs ours fp32 fp32_ieee fp32_tf32 --generator-configs ours \
    --profile ours 2>&1 | tee "$OUT/train_step.log"
timeout 140 python3 train_step.py --paper-sizes --patch-size 64 --batch-size 4 --steps 5 --threads 16 \
    --variants threeplayer --configs autotuned compiled graphs --generator-configs autotuned compiled \
    --profile autotuned 2>&1 | tee "$OUT/train_step_switches.log"
timeout 80 python3 paper_cost.py --threads 16 --steps 3 2>&1 | tee "$OUT/paper_cost.log"
