"""IXI: the public T1 archive (one tar of ``IXI<nnn>-<site>-<nnnn>-T1.nii.gz`` files), fetched once and unpacked by
streaming, so that the ~4.5 GB tar is read once and no member is held in memory whole.

IXI scans are not skull-stripped and come without brain masks: :func:`head_mask` gives the foreground (head)
mask that cropping and the masked metrics use, so for IXI the ``_brain`` metric columns are over the head.
"""

from __future__ import annotations

import logging
import re
import shutil
import tarfile
from pathlib import Path

import numpy as np

from mrisr.errors import InputError
from mrisr.io import atomic_path, load_volume, save_volume
from mrisr.preprocessing import head_mask

log = logging.getLogger(__name__)
MEMBER = re.compile(r"(?:.*/)?IXI(\d{3})-([A-Za-z]+)-(\d+)-T1\.nii\.gz$")


def subject_id(member_name: str) -> str | None:
    """``IXI002-Guys-0828-T1.nii.gz`` -> ``IXI002``; None for anything else in the archive."""
    match = MEMBER.match(member_name)
    return f"IXI{match.group(1)}" if match else None


def extract_subjects(tar_path: str | Path, subjects: list[str], out_dir: str | Path) -> dict[str, Path]:
    """Stream through the tar once and write ``<out_dir>/sub-<id>/sub-<id>_T1w.nii.gz`` for each wanted subject."""
    wanted, written = set(subjects), {}
    out = Path(out_dir)
    try:
        with tarfile.open(tar_path, mode="r|*") as archive:
            for member in archive:
                sid = subject_id(member.name)
                if sid not in wanted or not member.isfile():
                    continue
                target = out / f"sub-{sid}" / f"sub-{sid}_T1w.nii.gz"
                source = archive.extractfile(member)
                with atomic_path(target) as tmp, open(tmp, "wb") as sink:
                    shutil.copyfileobj(source, sink, 1 << 20)
                written[sid] = target
                log.info("%s -> %s", member.name, target)
                if len(written) == len(wanted):
                    break
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise InputError(tar_path, f"cannot be read as a tar archive ({exc})",
                         "delete it and rerun: the download rule fetches it again") from exc
    missing = sorted(wanted - set(written))
    if missing:
        raise InputError(tar_path, f"has no T1 scan for {', '.join(missing)}",
                         "list subjects that the archive holds (IXI ids look like IXI002) in datasets.<name>.subjects")
    return written


def extract(tar: str, subjects: list[str], out_dir: str) -> dict[str, Path]:
    """The fetch stage for IXI: each subject's T1w from the archive, with a head mask (IXI has no brain masks)."""
    written = extract_subjects(tar, subjects, out_dir)
    for subject, t1w in written.items():
        image = load_volume(t1w)
        mask = head_mask(np.asanyarray(image.dataobj, dtype=np.float32)).astype(np.uint8)
        save_volume(mask, image.affine, t1w.with_name(f"sub-{subject}_mask.nii.gz"))
    return written
