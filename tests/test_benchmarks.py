"""The benchmark scripts' own arithmetic: the generator's FLOP count and the demo's stage shares."""

import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from mrisr.train.gan import GanTrainer
from tests.test_train import SETTINGS, VARIANT

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import demo_stages  # noqa: E402
import train_step  # noqa: E402


def test_generator_pass_counts_every_conv_forward_and_backward():
    trainer = GanTrainer(VARIANT, SETTINGS)
    forward = []

    def count(module, inputs, output):
        k = module.kernel_size[0] * module.kernel_size[1] * module.kernel_size[2]
        forward.append(2 * k * module.in_channels // module.groups * output.numel())

    hooks = [m.register_forward_hook(count) for m in trainer.generator.modules() if isinstance(m, torch.nn.Conv3d)]
    flops, seconds = train_step.generator_pass(trainer, steps=1)
    for hook in hooks:
        hook.remove()
    per_pass = forward[:len(hooks)]
    # backward: a weight gradient for every conv, an input gradient for all but the first (its input is data)
    assert flops == 3 * sum(per_pass) - per_pass[0]
    assert seconds > 0
    assert all(p.grad is None for p in trainer.generator.parameters())


def test_demo_stages_sums_each_stage_over_its_jobs(tmp_path):
    jobs = {"train/demo/a.tsv": [10.0], "train/demo/b.tsv": [30.0], "evaluate/x/c.tsv": [5.0, 5.0]}
    for name, seconds in jobs.items():
        path = tmp_path / "benchmarks" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame({"s": seconds, "max_rss": [1.0] * len(seconds)}).to_csv(path, sep="\t", index=False)
    stages = demo_stages.stage_seconds(tmp_path)
    assert stages.to_dict() == {"train": 40.0, "evaluate": 10.0}
    lines = demo_stages.table(stages, wall=25.0)
    assert "| train | 40.0 | 80.0% |" in lines and "| evaluate | 10.0 | 20.0% |" in lines
    assert lines[-1].endswith("job-seconds / wall time: 2.00")


def test_demo_stages_without_a_run_says_so(tmp_path):
    with pytest.raises(SystemExit, match="run the workflow first"):
        demo_stages.stage_seconds(tmp_path)
