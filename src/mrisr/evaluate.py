"""The evaluate stage: one method's SR volumes against the HR ground truth, a CSV row per test subject.

PSNR, SSIM and NRMSE on the whole volume and inside the brain mask (:mod:`mrisr.metrics`), LPIPS over slices
when its backbone is there (:mod:`mrisr.perceptual`), and the noise σ̂ of the output (and of the LR input).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mrisr.errors import InputError, MrisrError
from mrisr.io import load_mask, load_volume, same_grid, write_table
from mrisr.metrics import METRICS, MTVNET_COLUMNS, evaluate, mtvnet_metrics, noise_sigma
from mrisr.perceptual import SliceLpips, backbone_status
from mrisr.scale import MAX_FACTOR, whole_lr_voxels

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class LpipsOptions:
    """``--lpips-dir``, ``--lpips-step``, ``--lpips-sha256``: the fetch_lpips rule's folder (None: no LPIPS), every
    n-th brain slice per plane, and the sha256 that the AlexNet weights must have."""

    dir: str | None
    step: int | None
    sha256: str


def _lpips(lpips: LpipsOptions, threads: int) -> tuple[SliceLpips | None, str]:
    """The LPIPS metric on ``threads`` CPU threads, or None and the note that says why it is not computed. Only LPIPS
    needs torch: an evaluate job without it does not import it (2 s of each of the workflow's many small jobs)."""
    status = backbone_status(lpips.dir)
    if status["available"]:
        from mrisr.device import set_threads

        set_threads(threads)
        return SliceLpips(lpips.dir, lpips.sha256), ""
    note = f"not computed: the AlexNet weights could not be fetched ({status['reason']})"
    log.warning("LPIPS %s", note)
    return None, note


def not_computed(subjects: list[str], reason: str, out: str, mtvnet: bool = False) -> Path:
    """A metrics file without metrics: one row per subject whose ``note`` says why (e.g. an outside method whose
    environment could not be installed), which the tables print as "not computed"."""
    log.warning("not computed: %s", reason)
    columns = [column for name in METRICS for column in (name, f"{name}_brain")]
    columns += list(MTVNET_COLUMNS) if mtvnet else []
    return write_table(pd.DataFrame({"subject": subjects, **dict.fromkeys(columns, np.nan),
                                     "note": f"not computed: {reason}"}), out)


def evaluate_files(subjects: list[str], gt: list[str], pred: list[str] | None, mask: list[str], lr: list[str] | None,
                   lpips: LpipsOptions, out: str, threads: int, not_computed_reason: str | None = None,
                   mtvnet: bool = False) -> Path:
    """Score ``pred`` against ``gt`` per subject (same order); ``lpips.dir`` None leaves LPIPS out; ``mtvnet`` adds
    MTVNet's metrics (:func:`mrisr.metrics.mtvnet_metrics`, which trim by the LR). ``not_computed_reason`` instead
    of ``pred``: :func:`not_computed`."""
    if bool(pred) == bool(not_computed_reason):
        raise MrisrError("evaluate needs either --pred or --not-computed REASON")
    if mtvnet and not lr:
        raise MrisrError("evaluate --mtvnet-metrics needs --lr: MTVNet keeps the slices by the LR's foreground")
    if not_computed_reason:
        return not_computed(subjects, not_computed_reason, out, mtvnet)
    if not (len(subjects) == len(gt) == len(pred) == len(mask)) or (lr and len(lr) != len(subjects)):
        raise MrisrError("evaluate needs one --gt, --pred, --mask (and --lr, if given) per --subjects entry")
    lpips_metric, lpips_note = _lpips(lpips, threads) if lpips.dir else (None, "")
    rows = []
    for i, (subject, gt_path, pred_path, mask_path) in enumerate(zip(subjects, gt, pred, mask)):
        truth, output = load_volume(gt_path), load_volume(pred_path)
        if whole_lr_voxels(truth.shape, output.shape, (MAX_FACTOR,) * 3):  # a setting whose scale the HR edges miss
            truth = truth.slicer[tuple(slice(0, n) for n in output.shape)]
        if not same_grid(truth, output):
            raise InputError(pred_path, f"grid {output.shape} does not match the ground truth {gt_path} ({truth.shape})",
                             "super-resolve onto the HR reference grid (--reference)")
        gt_data, pred_data = (np.asanyarray(v.dataobj, dtype=np.float32) for v in (truth, output))
        brain = load_mask(mask_path)[tuple(slice(0, n) for n in output.shape)]
        row = {"subject": subject, **evaluate(gt_data, pred_data, brain)}
        if lpips.dir:
            row["lpips"] = lpips_metric(gt_data, pred_data, brain, lpips.step) if lpips_metric else np.nan
            row["lpips_note"] = lpips_note
        row["sigma_sr"] = noise_sigma(pred_data)
        if lr:
            lr_data = np.asanyarray(load_volume(lr[i]).dataobj, dtype=np.float32)
            row["sigma_lr"] = noise_sigma(lr_data)
            if mtvnet:
                try:
                    row |= mtvnet_metrics(gt_data, pred_data, lr_data)
                except ValueError as exc:
                    raise InputError(pred_path, f"{exc} ({lr[i]})", "super-resolve the LR file onto its HR grid") from None
        rows.append(row)
    return write_table(pd.DataFrame(rows), out)
