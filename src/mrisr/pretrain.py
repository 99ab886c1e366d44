"""The pretrain stage: a generator trained on the pixel loss alone, once per generator architecture, pixel loss and
dataset. GAN variants with ``start: pretrained`` begin their adversarial training from it, as ESRGAN and BasicSR
(``pretrain_network_g``) do, instead of from random weights (``start: scratch``, the authors' choice).

A GAN step spends most of its time on D and the feature extractor; starting from a generator that already inverts
the degradation leaves the adversarial steps to add what the pixel loss cannot, and makes a short run a real model.
The learning rate falls to 0 on a cosine over the steps (BasicSR's pre-training schedule), so the model written is
the end of a settled descent, not a snapshot of Adam's last noisy step.
"""

from __future__ import annotations

import logging
from pathlib import Path

from mrisr import distributed
from mrisr.device import set_threads
from mrisr.generator_trainer import PixelOptimiser, PixelTrainer, load_training_volumes, scaled, training_card
from mrisr.models.registry import count_parameters
from mrisr.settings import PretrainSettings, fingerprint, result_settings
from mrisr.trainer import fit

log = logging.getLogger(__name__)


def pretrainer(generator: dict, pixel_loss: str, settings: PretrainSettings, card: dict | None = None) -> PixelTrainer:
    """This stage's trainer: Adam at ``pretrain.lr`` falling to 0 on a cosine, from random weights; its result is
    its generator's, pixel loss's and settings'."""
    result = fingerprint(generator=scaled(generator, settings.scale), pixel_loss=pixel_loss,
                         settings=result_settings(settings))
    return PixelTrainer(generator, pixel_loss, settings, PixelOptimiser(lr=settings.lr, betas=settings.betas), result,
                        card)


@distributed.data_parallel
def pretrain_generator(hr: list[str], generator: dict, pixel_loss: str, settings: dict, provenance: dict,
                       out_dir: str, threads: int) -> dict[str, Path]:
    """The pretrain stage: one generator on the prepared HR training volumes, pixel loss only; writes ``model.safetensors``
    (a model card: it super-resolves scans like any trained variant) and ``train_log.csv`` into ``out_dir``.

    ``settings``: the config's ``pretrain`` with ``train``'s batch and patch size, the scale, seed and degradation;
    ``provenance``: the generator's key, the dataset, the training subjects and prepare's ``preprocessing``;
    ``processes``: data-parallel processes on this node (:func:`mrisr.distributed.data_parallel`)."""
    set_threads(threads)
    volumes = load_training_volumes(hr)
    settings = PretrainSettings(**{**settings, "betas": tuple(settings["betas"])})
    card = training_card(provenance["variant"], {"generator": generator, "losses": {"pixel_loss": pixel_loss}},
                         settings, volumes, provenance, start="scratch")
    trainer = pretrainer(generator, pixel_loss, settings, card)
    log.info("generator: %s parameters", f"{count_parameters(trainer.generator):,}")
    return fit(trainer, lambda: trainer.train_step(volumes.arrays), out_dir, fix="lower pretrain.lr",
               show=("loss_pixel",),
               writer=trainer.rank == 0, desc="pretrain")
