"""The benchmark scripts' own logic: the generator's FLOP count, the demo's stage shares, the step timings'
configurations and failures, the paper run's jobs."""

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from mrisr.train.gan import GanTrainer
from tests.test_train import SETTINGS, VARIANT

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import demo_stages  # noqa: E402
import paper_cost  # noqa: E402
import train_step  # noqa: E402


def test_generator_pass_counts_every_conv_forward_and_backward():
    trainer = GanTrainer(VARIANT, SETTINGS)
    forward = []

    def count(module, inputs, output):
        k = module.kernel_size[0] * module.kernel_size[1] * module.kernel_size[2]
        forward.append(2 * k * module.in_channels // module.groups * output.numel())

    hooks = [m.register_forward_hook(count) for m in trainer.generator.modules() if isinstance(m, torch.nn.Conv3d)]
    flops = train_step.generator_flops(trainer)
    for hook in hooks:
        hook.remove()
    seconds = train_step.generator_seconds(trainer, steps=1)
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


def test_each_configuration_is_the_workflows_step_with_its_settings_changed():
    cfg = train_step.load_config(str(ROOT / "config.yaml"), paper_sizes=False)
    ours = train_step.workflow_settings(cfg)
    assert ours.degradation == cfg["degradations"][cfg["train"]["degradation"]]
    for name, (_, changes) in train_step.CONFIGS.items():
        changed = dataclasses.replace(ours, **changes)
        assert {k for k in dataclasses.asdict(ours) if getattr(ours, k) != getattr(changed, k)} <= set(changes)
    plain = dataclasses.replace(ours, **train_step.CONFIGS["plain"][1])
    assert (plain.precision, plain.memory_format, plain.shared_discriminator_pass) == ("fp32", "contiguous", False)


def test_a_configuration_that_fails_is_reported_and_the_others_go_on(rng):
    volumes = [rng.normal(size=(24, 24, 24)).astype(np.float32)]
    good, bad = GanTrainer(VARIANT, SETTINGS), GanTrainer(VARIANT, SETTINGS)
    calls = []

    def broken(_volumes):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("CUDA graphs: tensor output overwritten\nmore")
        return {}

    bad.train_step = broken
    results = train_step.measure({"good": good, "bad": bad}, volumes, steps=2)
    assert results["bad"] == {"failed": "failed: RuntimeError: CUDA graphs: tensor output overwritten"}
    assert results["good"]["step"] > 0 and results["good"]["first"] > 0 and good.step == 3


def test_the_paper_run_trains_each_variant_for_its_epochs_on_its_gpus():
    """authors.yaml + hcp.yaml: 20 epochs of the authors' grid (stride-16 64³ windows) over 27 HCP subjects
    (260 x 311 x 260): the DDP scripts' global batch 8 on 2 GPUs (4 per GPU; DISGAN a quarter of the windows), the
    MIDL 2022 and WGAN-GP scripts' batch 4 on one; no pretraining. hcp.yaml's own steps are the 3-player run's."""
    from mrisr.patches import GridSampler

    study = paper_cost.Study(paper_cost.run_config(["workflow/configs/authors.yaml", "workflow/configs/hcp.yaml"]),
                             paths={}, basedir=ROOT)
    jobs = {job: (gpus, build) for job, gpus, build in paper_cost.jobs(study, (260, 311, 260))}
    assert list(jobs) == [f"train {v}" for v in study.trained_variants()] and len(jobs) == 10
    shapes = [(260, 311, 260)] * 27
    for variant, batch, gpus, fraction in (("threeplayer", 8, 2, 1.0), ("disgan", 8, 2, 0.25),
                                           ("mrsrgan", 4, 1, 1.0)):
        epoch = GridSampler(shapes, size=64, stride=16, batch=batch, seed=0, processes=gpus, fraction=fraction)
        trainer = jobs[f"train {variant}"][1]()
        assert jobs[f"train {variant}"][0] == gpus
        assert (trainer.settings.batch_size, trainer.settings.steps) == (batch // gpus, 20 * epoch.per_epoch)
        if variant == "threeplayer":
            assert study.config["train"]["steps"] == 20 * epoch.per_epoch
