"""LPIPS of 3D volumes, as the mean over 2D slices of all three planes (grey replicated to 3 channels, AlexNet).

LPIPS needs ImageNet AlexNet weights that torchvision would fetch from the internet; here they come only from
a folder the workflow fills (``results/fetch/lpips/hub/checkpoints``), with a ``status.json`` that says
whether they are there and, when not, why. Without them LPIPS is reported as not computed, never guessed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mrisr import json_files
from mrisr.errors import InputError

#: The file name torchvision looks for; the hash prefix in it is part of torchvision's contract.
ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
#: What the fetch stage writes beside the weights: whether they are there and, when not, why.
STATUS_FILE = "status.json"


def alexnet_features(path: Path, sha256: str, backbone) -> dict:
    """torchvision's AlexNet ``features`` weights from ``path``, renamed to the slices of lpips' ``backbone``
    (``slice<k>.<index>``: each slice keeps torchvision's layer indices).

    The file must have the config's ``sha256`` (checked now, not only at download) and is read tensors-only, so a
    planted file neither runs code nor passes as the backbone."""
    from mrisr.io import digest_of, load_torch

    fix = "delete the lpips folder under results/fetch and rerun the fetch_lpips rule online"
    if not path.is_file():
        raise InputError(path, "does not exist", fix)
    actual = digest_of(path)
    if actual != sha256.lower():
        raise InputError(path, f"has sha256 {actual}, not lpips.sha256 {sha256}: it is not the fetched backbone", fix)
    weights = load_torch(path, fix)
    slice_of = {index: name for name, part in backbone.named_children() for index, _ in part.named_children()}
    features = {key.removeprefix("features."): value for key, value in weights.items() if key.startswith("features.")}
    return {f"{slice_of[key.split('.')[0]]}.{key}": value for key, value in features.items()}


def backbone_status(folder: str | Path) -> dict:
    path = Path(folder) / STATUS_FILE
    if not path.is_file():
        return {"available": False, "reason": f"{path} does not exist (the fetch_lpips rule writes it)"}
    return json_files.read(path)


class SliceLpips:
    """LPIPS (AlexNet, v0.1 linear heads shipped with the lpips package) over slices of 3D volumes."""

    def __init__(self, folder: str | Path, sha256: str, device: str = "cpu", batch: int = 16):
        import lpips

        status = backbone_status(folder)
        if not status["available"]:
            raise InputError(folder, f"has no AlexNet weights ({status['reason']})", "rerun the fetch_lpips rule online")
        # pnet_rand: lpips builds AlexNet without torchvision's hub loader (a full pickle); the weights come next
        self.net = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False)
        self.net.net.load_state_dict(alexnet_features(Path(folder) / "hub" / "checkpoints" / ALEXNET_FILE, sha256,
                                                      self.net.net))
        self.net = self.net.to(device).eval()
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
