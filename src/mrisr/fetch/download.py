"""HTTP(S) downloads that resume and verify.

A download goes to ``<dest>.part``; an interrupted one resumes with an HTTP Range request (or restarts when
the server ignores it); the file is renamed into place only after its size and sha256 match, so a partial
or wrong file never passes as complete.
"""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.request
from pathlib import Path

from tqdm import tqdm

from mrisr.errors import InputError

log = logging.getLogger(__name__)
CHUNK = 1 << 20


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _fetch(url: str, part: Path, timeout: float, progress: bool) -> None:
    start = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={start}-"} if start else {})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        if start and response.status != 206:
            log.info("%s ignored the range request; restarting the download", url)
            start = 0
        length = response.headers.get("Content-Length")
        total = start + int(length) if length is not None else None
        with open(part, "ab" if start else "wb") as out, tqdm(
            total=total, initial=start, unit="B", unit_scale=True, desc=part.name, disable=not progress
        ) as bar:
            received = start
            for block in iter(lambda: response.read(CHUNK), b""):
                out.write(block)
                received += len(block)
                bar.update(len(block))
    if total is not None and received < total:
        raise ConnectionError(f"connection closed after {received} of {total} bytes")


def download(url: str, dest: str | Path, sha256: str | None, size: int | None = None, timeout: float = 60.0,
             progress: bool = True) -> Path:
    """Fetch ``url`` to ``dest`` unless ``dest`` already has the expected sha256; return ``dest``.

    ``sha256=None`` (a file whose hash nobody has published, such as IXI's tars) checks the size only and logs
    the hash it got, so that a user can pin it in the config.
    """
    dest = Path(dest)
    if dest.exists() and (sha256_of(dest) == sha256.lower() if sha256 else size is None or dest.stat().st_size == size):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    try:
        _fetch(url, part, timeout, progress)
    except OSError as exc:
        raise InputError(url, f"download stopped ({exc}); {part.stat().st_size if part.exists() else 0} bytes kept "
                              f"in {part}", "rerun to resume, or check the network and the URL") from exc
    actual_size = part.stat().st_size
    if size is not None and actual_size != size:
        part.unlink()
        raise InputError(url, f"download has {actual_size} bytes, expected {size}", "rerun to download it again")
    actual = sha256_of(part)
    if sha256 is None:
        log.warning("%s: no sha256 in the config to check against; got sha256 %s (%d bytes): pin it", url, actual,
                    actual_size)
    elif actual != sha256.lower():
        part.unlink()
        raise InputError(url, f"sha256 {actual} does not match the expected {sha256}",
                         "rerun; if it persists, the file on the server changed: check the URL and the sha256 in config")
    os.replace(part, dest)
    return dest
