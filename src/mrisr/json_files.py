"""JSON files that someone else made (BIDS sidecars, dataset descriptions): read only within bounds, so that a
link to a device, a pipe, a huge file or a deeply nested one gives the usual clear error, not a hang or a traceback.
Light (no numpy): planning reads BIDS datasets."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from mrisr.errors import InputError

#: a JSON file someone else made (a BIDS sidecar, a dataset description): at most this many bytes, this deep
MAX_BYTES, MAX_DEPTH = 16 * 2**20, 64


def read_bytes(path: str | os.PathLike) -> bytes:
    """The bytes of a JSON file someone else made, read only if it is a regular file (a link followed) of at most
    :data:`MAX_BYTES`: a link to ``/dev/zero`` would be read until memory runs out, a pipe would hang."""
    path = Path(path)
    fix = "replace it with the JSON file itself (a regular file of a few kB)"
    try:
        found = os.stat(path)
    except OSError as exc:
        raise InputError(path, f"cannot be read ({exc.strerror})", fix) from None
    if not stat.S_ISREG(found.st_mode):
        raise InputError(path, "is not a regular file (a device, a pipe or a folder, or a link to one)", fix)
    with open(path, "rb") as f:
        data = f.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise InputError(path, f"is over {MAX_BYTES // 2**20} MiB, more than any sidecar or description holds", fix)
    return data


def nesting(value, limit: int = MAX_DEPTH) -> int:
    """How deep ``value`` nests (a number or string: 0), counted without recursion, up to ``limit`` + 1."""
    deepest, stack = 0, [(value, 0)]
    while stack and deepest <= limit:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level + 1)
            stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def parse(path: str | os.PathLike, data: bytes):
    """``data`` of the file ``path`` as JSON nested at most :data:`MAX_DEPTH` deep, else an InputError (invalid JSON
    raises json's ValueError)."""
    try:
        value = json.loads(data)
    except RecursionError:  # deeper than Python's parser follows
        value, deepest = None, MAX_DEPTH + 1
    else:
        deepest = nesting(value)
    if deepest > MAX_DEPTH:
        raise InputError(path, f"nests deeper than {MAX_DEPTH} levels", "give the file's JSON without that nesting")
    return value


def read(path: str | os.PathLike):
    """A JSON file someone else made, within :func:`read_bytes`' and :func:`parse`'s limits; invalid JSON is an
    InputError too."""
    data = read_bytes(path)
    try:
        return parse(path, data)
    except ValueError as exc:
        raise InputError(path, f"is not valid JSON ({exc})", "fix or remove the file") from None
