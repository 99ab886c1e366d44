"""LPIPS of 3D volumes, as the mean over 2D slices of all three planes (grey replicated to 3 channels, AlexNet).

LPIPS needs ImageNet AlexNet weights that torchvision would fetch from the internet; here they come only from
a folder the workflow fills (``results/fetch/lpips/hub/checkpoints``), with a ``status.json`` that says
whether they are there and, when not, why. Without them LPIPS is reported as not computed, never guessed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mrisr.errors import InputError

#: The file name torchvision looks for; the hash prefix in it is part of torchvision's contract.
ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
#: What the fetch stage writes beside the weights: whether they are there and, when not, why.
STATUS_FILE = "status.json"


def backbone_status(folder: str | Path) -> dict:
    path = Path(folder) / STATUS_FILE
    if not path.is_file():
        return {"available": False, "reason": f"{path} does not exist (the fetch_lpips rule writes it)"}
    return json.loads(path.read_text())


class SliceLpips:
    """LPIPS (AlexNet, v0.1 linear heads shipped with the lpips package) over slices of 3D volumes."""

    def __init__(self, folder: str | Path, device: str = "cpu", batch: int = 16):
        import lpips
        import torch

        status = backbone_status(folder)
        if not status["available"]:
            raise InputError(folder, f"has no AlexNet weights ({status['reason']})", "rerun the fetch_lpips rule online")
        previous = torch.hub.get_dir()
        torch.hub.set_dir(str(Path(folder) / "hub"))
        try:
            self.net = lpips.LPIPS(net="alex", verbose=False).to(device).eval()
        finally:
            torch.hub.set_dir(previous)
        self.device, self.batch = device, batch

    def __call__(self, gt: np.ndarray, pred: np.ndarray, mask: np.ndarray, step: int = 1) -> float:
        """Mean LPIPS over every ``step``-th slice that holds brain, in each of the three planes.

        Intensities map to [-1, 1] by the GT range (min-max, as the other metrics' data range) and are clipped.
        """
        import torch

        lo, hi = float(gt.min()), float(gt.max())
        scores = []
        for axis in range(3):
            keep = np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))[::step]
            for start in range(0, len(keep), self.batch):
                index = keep[start:start + self.batch]
                pair = [torch.from_numpy(np.ascontiguousarray(np.moveaxis(v, axis, 0)[index], dtype=np.float32))
                        for v in (gt, pred)]
                a, b = ((2 * (x - lo) / (hi - lo) - 1).clamp(-1, 1)[:, None].expand(-1, 3, -1, -1).to(self.device)
                        for x in pair)
                with torch.inference_mode():
                    scores.append(self.net(a, b).flatten().cpu())
        return float(torch.cat(scores).mean())
