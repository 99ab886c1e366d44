"""The fetch stage for LPIPS: torchvision's ImageNet AlexNet weights into a folder of the workflow's, never into the
user's own torch cache, with a ``status.json`` that :func:`mrisr.perceptual.backbone_status` reads.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from mrisr.errors import InputError
from mrisr.fetch.download import download
from mrisr.io import write_text
from mrisr.perceptual import ALEXNET_FILE, STATUS_FILE

log = logging.getLogger(__name__)


def fetch_backbone(url: str, sha256: str, size: int | None, out_dir: str | Path, final_dir: str | Path | None = None
                   ) -> dict:
    """Download the AlexNet weights into ``out_dir/hub/checkpoints``; write and return ``status.json``.

    A failed download is recorded, not raised: LPIPS is an optional column and the rest of the workflow
    must not stop for it. ``final_dir`` is where ``out_dir`` will be moved, named in the message.
    """
    out = Path(out_dir)
    try:
        path = download(url, out / "hub" / "checkpoints" / ALEXNET_FILE, sha256, size)
        status = {"available": True, "file": str(path.relative_to(out)), "sha256": sha256, "url": url}
    except InputError as exc:
        why = exc.__cause__ or str(exc).split(". Fix:")[0]
        status = {"available": False, "url": url,
                  "reason": f"could not fetch {url}: {why}; once it can be reached, delete {final_dir or out} and rerun"}
    write_text(json.dumps(status, indent=2) + "\n", out / STATUS_FILE)
    return status


def fetch_lpips_backbone(url: str, sha256: str, size: int | None, out_dir: str) -> dict:
    """The stage: fill ``out_dir`` (a folder the rule declares) in one rename; offline, record why LPIPS is left out.

    The staging folder's name is fixed, so that a rerun resumes an interrupted download.
    """
    out = Path(out_dir)
    staging = out.with_name(f".{out.name}.partial")
    status = fetch_backbone(url, sha256, size, staging, final_dir=out)
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
    if not status["available"]:
        log.warning("LPIPS will not be computed: %s", status["reason"])
    return status
