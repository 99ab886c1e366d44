"""HTTP(S) downloads that resume and verify.

A download goes to ``<dest>.part``; an interrupted one resumes with an HTTP Range request (or restarts when the
server ignores it or answers for other bytes); the file is renamed into place only after its size and sha256
match (or its MD5, where that is what the publisher gives). Where no hash is pinned, the file's own format must
say it is whole (a tar's end blocks, a gzip's trailer, a zip's directory) and an HTML page is refused, so that an
error page or a body cut short never passes as complete.
"""

from __future__ import annotations

import gzip
import http.client
import logging
import os
import re
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path

from tqdm import tqdm

from mrisr.errors import InputError
from mrisr.io import digest_of, sync_to_disk

log = logging.getLogger(__name__)
CHUNK = 1 << 20
#: After its first GRACE_S seconds a download must average MIN_RATE bytes/s, else it stops (its bytes kept: a rerun
#: resumes): a server that trickles a byte a minute never trips the socket's timeout, only this deadline
MIN_RATE, GRACE_S = 100_000, 600.0
CONTENT_RANGE = re.compile(r"bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)")


class _Restart(Exception):
    """The server answered for other bytes than the ``.part`` file needs: download from the start."""


def _fetch(url: str, part: Path, timeout: float, progress: bool, size: int | None) -> int | None:
    """Append the rest of ``url`` to ``part``; return the total size the server declared (None if it did not).
    ``size``: the pinned size, which no declared length may differ from and no body may run past."""
    start = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={start}-"} if start else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        declared = CONTENT_RANGE.fullmatch(exc.headers.get("Content-Range", "") or "")
        if exc.code == 416 and declared and declared[2] != "*" and int(declared[2]) == start:
            return start  # the .part holds every byte already (stopped while it was being checked)
        if exc.code == 416:
            raise _Restart(f"the server has no bytes from {start} on") from exc
        raise
    with response:
        if _is_html(response.headers.get("Content-Type", ""), part):
            raise InputError(url, f"the server sent an HTML page ({response.headers.get('Content-Type')}), not the file",
                             "check the URL (a login, error or moved page answered it)")
        if start and response.status != 206:
            log.info("%s ignored the range request; restarting the download", url)
            start = 0
        elif start:
            declared = CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", ""))
            if not declared or declared[1] is None or int(declared[1]) != start:
                raise _Restart(f"asked for bytes from {start}, the server sent "
                               f"{response.headers.get('Content-Range') or 'no Content-Range'}")
        length = response.headers.get("Content-Length")
        if length is not None and not re.fullmatch(r"[0-9]+", length.strip()):
            raise InputError(url, f"the server declared a length that is not a byte count (Content-Length: {length!r})",
                             "check the URL; a proxy or a broken server answered it")
        total = start + int(length) if length is not None else None
        if size is not None and total is not None and total != size:
            raise InputError(url, f"the server declares {total} bytes, the config pins {size}",
                             "check the URL and the size in the config (the file on the server changed, or another "
                             "answered)")
        flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | (os.O_APPEND if start else os.O_TRUNC)
        with os.fdopen(os.open(part, flags, 0o644), "wb") as out, tqdm(
            total=total, initial=start, unit="B", unit_scale=True, desc=part.name, disable=not progress
        ) as bar:
            received, began = start, time.monotonic()
            for block in iter(lambda: response.read1(CHUNK), b""):
                if time.monotonic() - began > GRACE_S + (received - start) / MIN_RATE:
                    raise TimeoutError(f"slower than {MIN_RATE / 1000:g} kB/s on average after {GRACE_S:g} s")
                if size is not None and received + len(block) > size:
                    raise InputError(url, f"the server sends more than the {size} bytes the config pins",
                                     "check the URL and the size in the config")
                out.write(block)
                received += len(block)
                bar.update(len(block))
    if total is not None and received < total:
        raise ConnectionError(f"connection closed after {received} of {total} bytes")
    return total


def _is_html(content_type: str, part: Path) -> bool:
    return content_type.split(";")[0].strip().lower() == "text/html" and not part.name.endswith((".html.part", ".htm.part"))


def _format_of(path: Path) -> str | None:
    """The format the file's first bytes say: html, gzip, zip, tar, or None (one without marks of its end)."""
    with open(path, "rb") as f:
        head = f.read(512)
    text = head.removeprefix(b"\xef\xbb\xbf").lower().lstrip()
    while text.startswith(b"<!--"):  # comments before the page (an error page's banner); unclosed here: markup
        end = text.find(b"-->")
        if end < 0:
            return "html"
        text = text[end + 3:].lstrip()
    if text.startswith((b"<!doctype html", b"<html")):
        return "html"
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:4] == b"PK\x03\x04":
        return "zip"
    return "tar" if head[257:262] == b"ustar" else None


def format_problem(path: Path) -> str | None:
    """Why the file's own format says it is cut short or not the file (None: whole, or a format without such
    marks). Gzip files are read to their trailer, tar archives to their end blocks, zip files to their directory."""
    kind = _format_of(path)
    try:
        if kind == "html":
            return "it is an HTML page"
        if kind == "gzip":
            with gzip.open(path, "rb") as stream:
                while stream.read(CHUNK):
                    pass
        elif kind == "zip" and not zipfile.is_zipfile(path):
            return "its zip directory is missing (cut short)"
        elif kind == "tar":
            return _tar_problem(path)
    except (EOFError, OSError, zlib.error, tarfile.TarError) as exc:
        return f"it is cut short or damaged ({exc})"
    return None


def _tar_problem(path: Path) -> str | None:
    with tarfile.open(path, mode="r:") as archive:
        for _ in archive:  # raises ReadError where a member's data is cut
            pass
        end = archive.offset
    with open(path, "rb") as f:
        f.seek(end)
        if f.read(1024) != bytes(1024):
            return "it has no end-of-archive blocks (cut short)"
    return None


def download(url: str, dest: str | Path, sha256: str | None, size: int | None = None, timeout: float = 60.0,
             progress: bool = True, md5: str | None = None) -> Path:
    """Fetch ``url`` to ``dest`` unless ``dest`` already has the expected hashes; return ``dest``.

    ``sha256`` and ``md5`` are checked where given (IXI publishes an MD5 only). With neither, the size, if given, and
    the file's format are checked, and the sha256 it got is logged, so that a user can pin it in the config.
    """
    dest = Path(dest)
    expected = {name: value.lower() for name, value in (("sha256", sha256), ("md5", md5)) if value}
    if dest.exists() and (size is None or dest.stat().st_size == size) and all(
            digest_of(dest, name) == value for name, value in expected.items()):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    if part.is_symlink():  # mrisr writes its partial downloads itself: a link would send the bytes elsewhere
        raise InputError(part, "is a link, not a partial download of mrisr's", "remove it and rerun")
    try:
        try:
            declared = _fetch(url, part, timeout, progress, size)
        except _Restart as restart:
            log.warning("%s: %s; downloading from the start", url, restart)
            part.unlink(missing_ok=True)
            declared = _fetch(url, part, timeout, progress, size)
    except (OSError, http.client.HTTPException, _Restart) as exc:
        raise InputError(url, f"download stopped ({exc}); {part.stat().st_size if part.exists() else 0} bytes kept "
                              f"in {part}", "rerun to resume, or check the network and the URL") from exc
    actual_size = part.stat().st_size
    if size is not None and actual_size != size:
        part.unlink()
        raise InputError(url, f"download has {actual_size} bytes, expected {size}", "rerun to download it again")
    for name, value in expected.items():
        actual = digest_of(part, name)
        if actual != value:
            part.unlink()
            raise InputError(url, f"{name} {actual} does not match the expected {value}",
                             f"rerun; if it persists, the file on the server changed: check the URL and the {name} "
                             "in config")
    if not expected:
        problem = format_problem(part)
        if problem is None and size is None and declared is None and _format_of(part) is None:
            problem = "neither the server (no Content-Length) nor the config (no size or hash) says how long it is"
        if problem:
            part.unlink()
            raise InputError(url, f"the download is not the whole file: {problem}",
                             "rerun; if it persists, check the URL, and pin the file's size or sha256 in the config")
        log.warning("%s: no hash in the config to check against; got sha256 %s (%d bytes): pin it", url,
                    digest_of(part), actual_size)
    sync_to_disk(part)
    os.replace(part, dest)
    sync_to_disk(dest.parent)
    return dest

