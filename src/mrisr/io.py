"""NIfTI and table I/O: validated reads, atomic writes, affine bookkeeping.

Every writer goes through :func:`atomic_path` so that a killed job leaves either the old file
or the new one, never a truncated file that the next rule would trust.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import hashlib
import logging
import os
import re
import socket
import tempfile
import time
import zlib
from pathlib import Path
from typing import Iterator

import nibabel as nib
import numpy as np

from mrisr.errors import NO_ROOM, InputError, OutputError

#: Age after which another host's temporary file counts as left by a killed write (no write takes a day).
STALE_AFTER_S = 24 * 3600
#: Who writes a temporary file: its pid and host, so that a rerun removes only what dead writers left.
_WRITER = re.compile(r"\.(?P<pid>\d+)@(?P<host>[A-Za-z0-9.-]+)~")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place only if the block succeeds.

    The file is synced to disk before the rename and gets the mode the user's umask gives new files (a
    temporary file is private until then). What killed writes of ``path`` left is removed first; live writers'
    files (another trainer on the same folder) are not touched. A full disk or quota is an :class:`OutputError`.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(path, "is a folder, not a file", "give the output a file name (or a path that is not taken)")
    folder = next(p for p in path.parents if p.exists())
    if not folder.is_dir():
        raise OutputError(path, f"cannot be made: {folder} is a file, not a folder",
                          "choose an output path whose folders are folders")
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_interrupted_writes(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{_temporary_prefix(path)}{os.getpid()}@{_host()}~",
                               suffix="".join(path.suffixes))
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        sync_to_disk(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
        sync_to_disk(path.parent)
    except OSError as exc:
        if exc.errno in NO_ROOM:
            raise OutputError(path, f"could not be written ({os.strerror(exc.errno)})",
                              f"free space (or quota) on the file system of {path.parent}, then rerun") from exc
        raise
    finally:
        tmp.unlink(missing_ok=True)


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname()) or "localhost"


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def sync_to_disk(path: Path) -> None:
    """fsync a file or a folder, so that a rename never publishes data still only in the page cache."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as exc:  # some file systems cannot sync a folder; the file itself was synced
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP) or not path.is_dir():
            raise
    finally:
        os.close(fd)


def _temporary_prefix(path: Path) -> str:
    return f".{path.name}."


def _left_by_killed_write(stale: Path) -> bool:
    """Only ``atomic_path``'s own form (``.<name>.<pid>@<host>~...``): a user's ``.<name>.orig`` is never ours."""
    writer = _WRITER.search(stale.name)
    if writer is None:
        return False
    if writer["host"] != _host():
        return time.time() - stale.stat().st_mtime > STALE_AFTER_S
    try:
        os.kill(int(writer["pid"]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def remove_interrupted_writes(path: str | os.PathLike) -> None:
    """Delete what killed ``atomic_path`` writes of ``path`` (or of names that extend it) left beside it: files of
    dead processes on this host, and other hosts' files older than :data:`STALE_AFTER_S`."""
    path = Path(path)
    for stale in path.parent.glob(f"{_temporary_prefix(path)}*"):
        with contextlib.suppress(FileNotFoundError):
            if _left_by_killed_write(stale):
                stale.unlink(missing_ok=True)


#: Largest tolerated axis tilt (radians) and relative voxel-size spread before a grid counts as oblique
#: or anisotropic.
OBLIQUE_TOLERANCE = 1e-3
ANISOTROPY_TOLERANCE = 1e-2


def load_volume(path: str | os.PathLike, *, role: str = "image", isotropic: bool = False,
                axis_aligned: bool = False, grid_fix: str = "resample it onto an isotropic, axis-aligned grid first"
                ) -> nib.Nifti1Image:
    """Read a NIfTI file and check it is a finite, non-constant 3D volume.

    A 4D file with one volume is squeezed to 3D; anything else that is not 3D is refused. Stages that
    need them ask for an ``axis_aligned`` (not oblique) or ``isotropic`` grid.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, f"{role} file does not exist", "check the path, or rerun the stage that makes it")
    try:
        img = nib.load(path)
        _check_header(path, img, role)
        data = np.asanyarray(img.dataobj)
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile, ValueError, OverflowError,
            nib.filebasedimages.ImageFileError, nib.spatialimages.HeaderDataError) as exc:
        raise InputError(path, f"cannot be read as NIfTI ({exc})", "replace it with an intact .nii or .nii.gz file") from exc
    if data.ndim == 4 and data.shape[3] == 1:
        logging.getLogger(__name__).warning("%s: %s has a singleton 4th axis; read as the 3D volume %s",
                                            path, role, data.shape[:3])
        data = data[..., 0]
        img = nib.Nifti1Image(data, img.affine, img.header)
    if data.ndim != 3:
        raise InputError(
            path,
            f"{role} must be a 3D volume but has shape {tuple(data.shape)}",
            "give one 3D volume per file (split 4D series; 2D slices cannot be super-resolved in 3D)",
        )
    if np.iscomplexobj(data) or data.dtype.fields is not None or data.dtype == bool:
        raise InputError(path, f"{role} has unsupported data type {data.dtype}",
                         "convert it to one real-valued scalar per voxel (magnitude, grey scale)")
    tilt = float(np.max(nib.affines.obliquity(img.affine)))
    if axis_aligned and tilt > OBLIQUE_TOLERANCE:
        raise InputError(path, f"{role} grid is oblique (tilted {np.degrees(tilt):.2f}° from the scanner axes)",
                         grid_fix)
    sizes = voxel_sizes(img.affine)
    if isotropic and sizes.max() > sizes.min() * (1 + ANISOTROPY_TOLERANCE):
        raise InputError(path, f"{role} voxels are anisotropic ({' x '.join(f'{v:.3g}' for v in sizes)} mm) but this "
                               "stage needs isotropic voxels", grid_fix)
    if data.dtype.kind == "f" and not np.all(np.isfinite(data)):
        raise InputError(path, "contains NaN or Inf voxels", "fix or mask those voxels before using the file")
    if data.dtype.kind == "f" and data.dtype.itemsize > 4 and np.abs(data).max() > np.finfo(np.float32).max:
        raise InputError(path, f"{role} has values up to {np.abs(data).max():.3g}, beyond float32's range",
                         "fix the header's scaling (scl_slope, scl_inter) or rescale the values")
    if role == "image":
        if float(data.max()) == float(data.min()):
            raise InputError(path, "is constant (no contrast)", "check that the right file was given")
    return img


#: Most bytes one byte of a gzip file can inflate to (deflate's limit is 1032:1): a header declaring more than
#: that cannot be true, and is refused before anything of that size is allocated.
GZIP_MAX_RATIO = 1032
#: Most voxels of any volume mrisr reads: 2^29 (812^3), above a whole head at 0.5 mm in a 320 mm field of view
#: (640^3) and far below what a forged header can declare (a 1 MB .nii.gz: up to 1032 MB of voxels).
MAX_VOXELS = 2**29


def _check_header(path: Path, img: nib.Nifti1Image, role: str) -> None:
    """Refuse a header that cannot describe a usable volume, before its data is read: an axis of length 0, more
    voxel bytes than the file can hold, a non-finite or singular affine."""
    shape = img.header.get_data_shape()
    if min(shape, default=0) <= 0:
        raise InputError(path, f"{role} has an axis of length {min(shape, default=0)} (shape {tuple(shape)})",
                         "replace it with the intact scan; the header's dim field is wrong or the export failed")
    voxels = int(np.prod(shape, dtype=np.float64))
    if voxels > MAX_VOXELS:
        raise InputError(path, f"{role} declares {' x '.join(map(str, shape))} = {voxels:,} voxels, more than mrisr "
                               f"reads ({MAX_VOXELS:,}: a whole head at 0.5 mm is about 270 million)",
                         "crop or resample the scan first (or check the header: the file may be forged)")
    declared = voxels * img.header.get_data_dtype().itemsize
    data_file = Path(img.file_map["image"].filename)
    with open(data_file, "rb") as f:
        compressed = f.read(2) == b"\x1f\x8b"
    size = data_file.stat().st_size
    room = size * GZIP_MAX_RATIO if compressed else size - img.header.get_data_offset()
    if declared > room:
        raise InputError(path, f"{role} declares {tuple(shape)} voxels of {img.header.get_data_dtype()} "
                               f"({declared / 2**20:.4g} MiB), more than the {size}-byte {data_file.name} can hold",
                         "replace it with an intact .nii or .nii.gz file (this one is damaged or forged)")
    affine = img.affine
    if affine is None or not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise InputError(path, f"{role} has a {'non-finite' if affine is None or not np.all(np.isfinite(affine)) else 'singular'} "
                               "voxel-to-world affine (sform/qform)",
                         "repair the header's sform and qform (e.g. copy them from the scan it came from)")


def load_mask(path: str | os.PathLike) -> np.ndarray:
    """A brain (or head) mask as booleans: every non-zero voxel is inside; an empty mask is refused."""
    mask = np.asanyarray(load_volume(path, role="mask").dataobj) > 0
    if not mask.any():
        raise InputError(path, "mask is empty (no voxel is inside)", "give the mask made for this scan (brain = 1)")
    return mask


def load_labels(path: str, image, image_path: str, n_classes: int) -> np.ndarray:
    """A label map checked against its image: the same grid, labels in ``0 .. n_classes - 1``."""
    label = load_volume(path, role="label map")
    if not same_grid(label, image):
        raise InputError(path, f"grid {label.shape} does not match its image {image_path} ({image.shape})",
                         "resample the label map onto the image grid (nearest neighbour)")
    values = np.asanyarray(label.dataobj)
    if values.min() < 0 or values.max() >= n_classes or not np.all(values == np.round(values)):
        raise InputError(path, f"has labels outside 0..{n_classes - 1}",
                         "map the labels to the classes of segmentation.classes (0 = background)")
    return values.astype(np.int64)


def digest_of(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """A file's hex digest (``sha256``, ``md5``: whichever its publisher gives), read in blocks."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, algorithm).hexdigest()


def load_torch(path: str | os.PathLike, fix: str, map_location="cpu"):
    """``torch.load`` of tensors and plain containers only; a missing or damaged file is an :class:`InputError`."""
    import torch  # here, not at the top: stages that never touch torch start seconds faster

    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError as exc:
        raise InputError(path, "does not exist", fix) from exc
    except Exception as exc:  # a damaged file fails anywhere in torch's unpickler (KeyError, IndexError, ...)
        raise InputError(path, f"cannot be read as a torch file ({type(exc).__name__}: {exc})", fix) from exc


def resample_isotropic(img: nib.Nifti1Image, spacing: float, order: int = 1) -> nib.Nifti1Image:
    """``img`` on an axis-aligned grid of ``spacing`` mm voxels covering the same field of view.

    An image already on such a grid comes back as it is. Otherwise the original voxel sizes are recorded in
    the header's ``descrip`` (and logged), so that the output says what was done. ``order`` 0 (nearest) keeps
    label maps and masks integer.
    """
    from nibabel.processing import resample_to_output

    tilt = float(np.max(nib.affines.obliquity(img.affine)))
    sizes = voxel_sizes(img.affine)
    if tilt <= OBLIQUE_TOLERANCE and np.allclose(sizes, spacing, rtol=ANISOTROPY_TOLERANCE):
        return img
    data = np.asanyarray(img.dataobj)
    source = nib.Nifti1Image(data if order == 0 else data.astype(np.float32), img.affine, img.header)
    out = resample_to_output(source, voxel_sizes=(spacing,) * 3, order=order, mode="nearest")
    before = " x ".join(f"{v:.3g}" for v in sizes)
    out.header["descrip"] = f"mrisr: resampled from {before} mm to {spacing:g} mm"[:79].encode()
    logging.getLogger(__name__).info("%s", out.header["descrip"].item().decode())
    return out


def resample_like(img: nib.Nifti1Image, like: nib.Nifti1Image, order: int = 0) -> nib.Nifti1Image:
    """``img`` on the grid of ``like`` (nearest by default: for masks and label maps)."""
    from nibabel.processing import resample_from_to

    return resample_from_to(img, like, order=order, mode="nearest")


#: how far (mm) two voxel-to-world affines of one grid may differ: float32 rounding of the headers
GRID_TOLERANCE_MM = 1e-3


def same_grid(a: nib.Nifti1Image, b: nib.Nifti1Image) -> bool:
    """Whether two images share their voxel grid (shape and affine, to :data:`GRID_TOLERANCE_MM`)."""
    return a.shape[:3] == b.shape[:3] and np.allclose(a.affine, b.affine, atol=GRID_TOLERANCE_MM)


def voxel_sizes(affine: np.ndarray) -> np.ndarray:
    """Voxel edge lengths in mm from an affine (robust to rotations)."""
    return np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(axis=0))


def save_volume(data: np.ndarray, affine: np.ndarray, path: str | os.PathLike, *, reference=None, dtype=None,
                descrip: str | None = None) -> Path:
    """Write ``data`` as NIfTI atomically; copy header fields (units, codes) from ``reference``; ``descrip`` names
    what made it (79 bytes at most)."""
    data = np.asarray(data)
    if dtype is not None:
        data = data.astype(dtype)
    header = reference.header.copy() if reference is not None else None
    img = nib.Nifti1Image(data, np.asarray(affine, dtype=np.float64), header)
    img.set_data_dtype(data.dtype)
    img.header.set_xyzt_units("mm", "sec")
    img.set_qform(img.affine, code=1)
    img.set_sform(img.affine, code=1)
    if data.dtype.kind == "f":
        img.header["scl_slope"], img.header["scl_inter"] = 1.0, 0.0
    if descrip is not None:
        img.header["descrip"] = descrip.encode()[:79]
    path = Path(path)
    with atomic_path(path) as tmp:
        nib.save(img, tmp)
    return path


def write_table(frame, path: str | os.PathLike, **kwargs) -> Path:
    """Write a pandas frame atomically; ``.tsv`` is tab-separated, anything else comma-separated."""
    path = Path(path)
    sep = "\t" if path.suffix == ".tsv" else ","
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, sep=sep, index=False, **kwargs)
    return path


def write_text(text: str, path: str | os.PathLike) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path
