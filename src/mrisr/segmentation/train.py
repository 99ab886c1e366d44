"""One arm of the study, one seed: a segmentation network trained with Dice + cross-entropy on random patches.

Both arms run the same steps, batch, patch sampler, initial weights and seeds (``segmentation.*``); the arm is
only the training set (:class:`~mrisr.segmentation.sampling.TrainingSet`). Resumable like the GAN training.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mrisr.errors import MrisrError
from mrisr.inference import default_device
from mrisr.io import atomic_path, write_table
from mrisr.models.registry import count_parameters
from mrisr.segmentation.network import build_network
from mrisr.segmentation.sampling import TrainingSet, sample_batch
from mrisr.training import runner

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SegSettings:
    steps: int
    batch_size: int
    patch_size: int
    lr: float
    seed: int
    classes: tuple[str, ...]
    sr_fraction: float = 0.5
    checkpoint_every: int = 500
    precision: str = "auto"  # auto: bf16 autocast on CUDA, fp32 on CPU


class SegTrainer:
    def __init__(self, network: dict, settings: SegSettings, arm: str):
        self.network_spec, self.settings = network, settings
        self.device = default_device()
        torch.manual_seed(settings.seed)  # same seed, same initial weights in both arms
        self.network = build_network(network, len(settings.classes)).to(self.device)
        self.optimiser = torch.optim.Adam(self.network.parameters(), lr=settings.lr)
        from monai.losses import DiceCELoss

        self.loss = DiceCELoss(to_onehot_y=True, softmax=True)
        self.bf16 = settings.precision == "bf16" or (settings.precision == "auto" and self.device.type == "cuda")
        result = {k: v for k, v in asdict(settings).items() if k != "checkpoint_every"}
        blob = json.dumps({"network": network, "settings": result, "arm": arm}, sort_keys=True)
        self.fingerprint = hashlib.sha256(blob.encode()).hexdigest()[:16]
        self.step = 0
        self.rows: list[dict] = []

    def state(self) -> dict:
        return {"network": self.network.state_dict(), "optimiser": self.optimiser.state_dict(), "rows": self.rows}

    def load_state(self, state: dict) -> None:
        self.network.load_state_dict(state["network"])
        self.optimiser.load_state_dict(state["optimiser"])
        self.rows = state["rows"]

    def train_step(self, data: TrainingSet) -> dict:
        s = self.settings
        started = time.perf_counter()
        images, labels, from_sr = sample_batch(data, s.patch_size, s.batch_size, s.seed, self.step, s.sr_fraction)
        self.network.train()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            logits = self.network(images.to(self.device))
        loss = self.loss(logits.float(), labels.to(self.device))
        self.optimiser.zero_grad(set_to_none=True)
        loss.backward()
        self.optimiser.step()
        self.step += 1
        return {"step": self.step, "loss": loss.item(), "sr_patches": int(from_sr.sum()),
                "seconds": time.perf_counter() - started}

    def bundle(self) -> dict:
        return {"network": self.network_spec, "classes": list(self.settings.classes), "seed": self.settings.seed,
                "state_dict": {k: v.cpu() for k, v in self.network.state_dict().items()}}


def train_segmentation(data: TrainingSet, network: dict, settings: SegSettings, out_dir: str | Path,
                       progress: bool = True) -> dict[str, Path]:
    """Train (or resume) one arm with one seed; write ``model.pt`` and ``train_log.csv`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = out / "checkpoint.pt"
    trainer = SegTrainer(network, settings, data.arm)
    log.info("%s arm, seed %d: %d training subjects, %s parameters", data.arm, settings.seed, len(data.images),
             f"{count_parameters(trainer.network):,}")
    if runner.try_resume(trainer, checkpoint):
        log.info("resumed from %s at step %d", checkpoint, trainer.step)

    def take_step() -> dict:
        row = trainer.train_step(data)
        if not np.isfinite(row["loss"]):
            raise MrisrError(f"segmentation training diverged at step {row['step']}: the loss is not finite; the last "
                             f"good checkpoint is kept at {checkpoint}. Fix: lower segmentation.lr")
        trainer.rows.append(row)
        return row

    runner.run_steps(trainer, settings.steps, take_step, checkpoint, settings.checkpoint_every, show=("loss",),
                     progress=progress, desc=f"segment {data.arm}")
    model, log_path = out / "model.pt", out / "train_log.csv"
    with atomic_path(model) as tmp:
        torch.save(trainer.bundle(), tmp)
    write_table(pd.DataFrame(trainer.rows), log_path)
    return {"model": model, "log": log_path}
