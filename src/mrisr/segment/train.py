"""One arm of the study, one seed: a segmentation network trained with Dice + cross-entropy on random patches.

Both arms run the same steps, batch, patch sampler, initial weights and seeds (``segmentation.*``); the arm is
only the training set (:class:`~mrisr.segment.sampling.TrainingSet`). Resumable like the GAN training.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch

from mrisr.device import set_threads
from mrisr.io import atomic_path
from mrisr.models.registry import count_parameters
from mrisr.segmenter import build_network
from mrisr.segment.sampling import TrainingSet, load_training_set, sample_batch
from mrisr.settings import SegSettings, fingerprint, result_settings
from mrisr.trainer import Trainer, fit

log = logging.getLogger(__name__)


class SegTrainer(Trainer):
    def __init__(self, network: dict, settings: SegSettings, arm: str):
        super().__init__(settings, fingerprint(network=network, settings=result_settings(settings), arm=arm))
        self.network_spec = network
        self.network = build_network(network, len(settings.classes)).to(self.device)
        self.optimiser = torch.optim.Adam(self.network.parameters(), lr=settings.lr)
        from monai.losses import DiceCELoss

        self.loss = DiceCELoss(to_onehot_y=True, softmax=True)

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
        with self.autocast():
            logits = self.network(images.to(self.device))
        loss = self.loss(logits.float(), labels.to(self.device))
        self.optimiser.zero_grad(set_to_none=True)
        loss.backward()
        self.optimiser.step()
        self.step += 1
        return {"step": self.step, "loss": loss.item(), "sr_patches": int(from_sr.sum()),
                "seconds": time.perf_counter() - started}

    def checked_losses(self, row: dict) -> tuple[str, ...]:
        return ("loss",)

    model_file = "model.pt"  # the run's own file, read by its evaluate job only

    def save_model(self, path: Path) -> None:
        """The segmenter's file (read by :func:`mrisr.segmenter.load_segmenter`)."""
        with atomic_path(path) as tmp:
            torch.save({"network": self.network_spec, "classes": list(self.settings.classes), "seed": self.settings.seed,
                        "state_dict": {k: v.cpu() for k, v in self.network.state_dict().items()}}, tmp)


def train_segmentation(data: TrainingSet, network: dict, settings: SegSettings, out_dir: str | Path,
                       progress: bool = True) -> dict[str, Path]:
    """Train (or resume) one arm with one seed; write ``model.pt`` and ``train_log.csv`` into ``out_dir``."""
    trainer = SegTrainer(network, settings, data.arm)
    log.info("%s arm, seed %d: %d training subjects, %s parameters", data.arm, settings.seed, len(data.images),
             f"{count_parameters(trainer.network):,}")
    return fit(trainer, lambda: trainer.train_step(data), out_dir, fix="lower segmentation.lr", show=("loss",),
               progress=progress, desc=f"segment {data.arm}")


def train_arm(image: list[str], label: list[str], sr: list[str] | None, network: dict, settings: dict, out_dir: str,
              threads: int) -> dict[str, Path]:
    """The segment stage's training: one arm (``real``, or ``real+sr`` when ``sr`` is given) with one seed."""
    set_threads(threads)
    seg = SegSettings(**{**settings, "classes": tuple(settings["classes"])})
    return train_segmentation(load_training_set(image, label, sr, len(seg.classes)), network, seg, out_dir)
