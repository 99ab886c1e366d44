"""The model file's container: what lies on disk, read within bounds before anything is built from it.

A model file is a safetensors file (an 8-byte header length, a JSON header, the tensors' raw bytes back to back:
the format Hugging Face, MONAI and ECLARE's authors publish): the generator's weights as its tensors, the generator
config and the model card as JSON strings in its metadata. Nothing in it can ask for memory or code: the header is
read under a size cap and checked (tensor count, offsets that tile the data exactly) before safetensors reads it.

Files written by earlier versions (``model.pt``, a torch zip of one pickle) are read by :func:`read_legacy`, which
accepts only what mrisr's own ``torch.save`` wrote: stored (not deflated) records, the pickle opcodes of protocol 2,
the globals of a state dict (``OrderedDict``, ``_rebuild_tensor_v2``, the storage types), each tensor dense over its
own storage. ``mrisr model-card --upgrade`` rewrites one as a safetensors file.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import pickletools
import stat
import struct
import zipfile
from dataclasses import dataclass, field
from math import prod
from pathlib import Path

from mrisr.errors import InputError
from mrisr.io import atomic_path
from mrisr.json_files import nesting

#: what a model file may hold: its JSON header (generator config and card included), its tensors, its bytes
MAX_HEADER_BYTES = 16 * 2**20
MAX_TENSORS = 10_000
MAX_DEPTH = 32
#: bytes per weight at most (float64), times the schema's parameter cap, plus the header
BYTES_PER_WEIGHT = 8
#: safetensors' dtype names and torch's legacy storage types, with their sizes
DTYPES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
STORAGES = {"DoubleStorage": "F64", "FloatStorage": "F32", "HalfStorage": "F16", "BFloat16Storage": "BF16",
            "LongStorage": "I64", "IntStorage": "I32", "ShortStorage": "I16", "CharStorage": "I8",
            "ByteStorage": "U8", "BoolStorage": "BOOL"}
#: the pickle opcodes torch.save (protocol 2) writes for a dict of plain data and a state dict
PICKLE_OPCODES = {"PROTO", "EMPTY_DICT", "EMPTY_LIST", "EMPTY_TUPLE", "MARK", "BINUNICODE", "BININT", "BININT1",
                  "BININT2", "LONG1", "BINFLOAT", "NEWTRUE", "NEWFALSE", "NONE", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3",
                  "SETITEM", "SETITEMS", "APPEND", "APPENDS", "BINPUT", "LONG_BINPUT", "BINGET", "LONG_BINGET",
                  "GLOBAL", "REDUCE", "BINPERSID", "BUILD", "STOP"}
SAFETENSORS_DTYPE = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "I64": "int64",
                     "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool"}


def max_file_bytes() -> int:
    from mrisr.config import load_schema

    return MAX_HEADER_BYTES + BYTES_PER_WEIGHT * load_schema()["definitions"]["generator"]["x-max-parameters"]


@dataclass
class ModelFile:
    """A model file's parts: the generator config and card (plain data), each tensor's dtype (safetensors' names) and
    shape, and how to read the tensors (only after the rest is checked)."""

    path: Path
    generator: object
    card: object
    shapes: dict[str, tuple[str, tuple[int, ...]]]
    legacy: bool
    fix: str
    _tensors: dict | None = field(default=None, repr=False)

    def tensors(self) -> dict:
        """The weights as torch tensors (dense, each its own memory)."""
        if self._tensors is None:
            from safetensors.torch import load_file

            try:
                self._tensors = load_file(self.path)
            except Exception as exc:  # safetensors' own checks of what the header check let through
                raise InputError(self.path, f"has damaged weights ({type(exc).__name__}: {exc})", self.fix) from None
        return self._tensors


def write(path: str | Path, generator_config: dict, state_dict: dict, card: dict) -> Path:
    """The model file: ``state_dict``'s tensors (each made dense) and the config and card in the metadata."""
    from safetensors.torch import save_file

    tensors = {name: t.detach().cpu().contiguous() for name, t in state_dict.items()}
    metadata = {"format": "pt", "generator": json.dumps(generator_config), "card": json.dumps(card)}
    with atomic_path(path) as tmp:
        save_file(tensors, tmp, metadata=metadata)
    return Path(path)


def read(path: str | Path, fix: str) -> ModelFile:
    """A model file's parts, its bytes checked against the caps before anything is parsed; a file written by an
    earlier version (a torch zip) through :func:`read_legacy`."""
    path = Path(path)
    size = _regular_file_size(path, fix)
    with open(path, "rb") as f:
        start = f.read(8)
        if start[:4] == b"PK\x03\x04":
            return read_legacy(path, fix)
        if len(start) < 8:
            raise InputError(path, "is not a model file (too short)", fix)
        (header_bytes,) = struct.unpack("<Q", start)
        if header_bytes > min(MAX_HEADER_BYTES, size - 8):
            raise InputError(path, f"is not an mrisr model file (its header would be {header_bytes:,} bytes; the file "
                                   f"is {size:,}, and mrisr's headers are under {MAX_HEADER_BYTES // 2**20} MiB)", fix)
        header = _json(path, f.read(header_bytes), "header", fix)
    if not isinstance(header, dict) or not isinstance(header.get("__metadata__"), dict):
        raise InputError(path, "is not an mrisr model file (its header has no metadata)", fix)
    metadata = header.pop("__metadata__")
    if not {"generator", "card"} <= metadata.keys():
        raise InputError(path, "is a safetensors file without mrisr's generator config and model card", fix)
    shapes = _checked_layout(path, header, size - 8 - header_bytes, fix)
    generator, card = (_json(path, metadata[key], key, fix) for key in ("generator", "card"))
    return ModelFile(path, generator, card, shapes, legacy=False, fix=fix)


def _regular_file_size(path: Path, fix: str) -> int:
    try:
        found = os.stat(path)
    except FileNotFoundError:
        raise InputError(path, "does not exist", fix) from None
    except OSError as exc:
        raise InputError(path, f"cannot be read ({exc.strerror})", fix) from None
    if not stat.S_ISREG(found.st_mode):
        raise InputError(path, "is not a regular file (a device, a pipe or a folder, or a link to one)", fix)
    if found.st_size > (cap := max_file_bytes()):
        raise InputError(path, f"is {found.st_size:,} bytes, more than a model within mrisr's parameter cap ({cap:,})",
                         fix)
    return found.st_size


def _json(path: Path, text: str | bytes, what: str, fix: str):
    """``text`` as JSON nested at most :data:`MAX_DEPTH` deep."""
    try:
        value = json.loads(text)
    except RecursionError:
        value = None
        deep = True
    except ValueError as exc:
        raise InputError(path, f"has a damaged {what} (not JSON: {exc})", fix) from None
    else:
        deep = nesting(value, MAX_DEPTH) > MAX_DEPTH
    if deep:
        raise InputError(path, f"has a {what} nested deeper than {MAX_DEPTH} levels", fix)
    return value


def _checked_layout(path: Path, header: dict, data_bytes: int, fix: str) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Each tensor's dtype and shape, its bytes those of its shape, the tensors tiling the data exactly in order."""
    if len(header) > MAX_TENSORS:
        raise InputError(path, f"holds {len(header):,} tensors, more than any mrisr generator ({MAX_TENSORS:,})", fix)
    shapes, spans = {}, []
    for name, entry in header.items():
        try:
            dtype, shape, (begin, end) = entry["dtype"], tuple(entry["shape"]), entry["data_offsets"]
            ok = (dtype in DTYPES and len(shape) <= 8 and all(type(n) is int and n >= 0 for n in shape)
                  and type(begin) is int and type(end) is int and end - begin == prod(shape) * DTYPES[dtype])
        except (TypeError, KeyError, ValueError):
            ok = False
        if not ok:
            raise InputError(path, f"has a damaged header entry for tensor {name[:80]!r}", fix)
        shapes[name] = (dtype, shape)
        spans.append((begin, end))
    position = 0
    for begin, end in sorted(spans):
        if begin != position:
            raise InputError(path, "has tensors that overlap or leave gaps in its data", fix)
        position = end
    if position != data_bytes:
        raise InputError(path, f"has {data_bytes:,} bytes of tensor data where its header declares {position:,}", fix)
    return shapes


# ---- files written by earlier versions: a torch zip of one pickle ----------------------------------------------------


class _StateDict(dict):
    """``collections.OrderedDict`` as a state dict pickles it: its one attribute (the modules' versions) dropped."""

    def __setstate__(self, state) -> None:
        if not isinstance(state, dict) or set(state) - {"_metadata"}:
            raise pickle.UnpicklingError("an OrderedDict with attributes other than a state dict's")


class _StandIn:
    """What the pickle's globals and storages become here: no attributes to set (BUILD on it is refused), so a
    pickle cannot override a method of anything it makes."""

    __slots__ = ()

    def __setstate__(self, state):
        raise pickle.UnpicklingError(f"attributes set on a {type(self).__name__.strip('_')}")


class _StorageType(_StandIn):
    __slots__ = ("dtype",)

    def __init__(self, dtype: str):
        self.dtype = dtype


class _Storage(_StandIn):
    __slots__ = ("key", "dtype", "numel")

    def __init__(self, key: str, dtype: str, numel: int):
        self.key, self.dtype, self.numel = key, dtype, numel


class _TensorRecord(_StandIn):
    """A tensor as ``torch._utils._rebuild_tensor_v2`` describes it, kept only if dense over its whole storage."""

    __slots__ = ("storage", "shape")

    def __init__(self, storage: _Storage, shape: tuple[int, ...]):
        self.storage, self.shape = storage, shape


class _RebuildTensor(_StandIn):
    __slots__ = ()

    def __call__(self, *args) -> _TensorRecord:
        return _rebuild_tensor(*args)


def _rebuild_tensor(storage, offset, shape, stride, requires_grad, hooks, metadata=None) -> _TensorRecord:
    if not (isinstance(storage, _Storage) and offset == 0 and isinstance(shape, tuple) and isinstance(stride, tuple)
            and len(shape) == len(stride) <= 8 and all(type(n) is int and n >= 0 for n in shape)
            and requires_grad is False and hooks == {} and metadata in (None, {})):
        raise pickle.UnpicklingError("a tensor other than a plain dense one")
    dense = 1
    for size, step in reversed(list(zip(shape, stride))):
        if size != 1 and step != dense:
            raise pickle.UnpicklingError("a tensor that is a strided view")
        dense *= size
    if dense != storage.numel:
        raise pickle.UnpicklingError("a tensor that is part of its storage, not all of it")
    return _TensorRecord(storage, shape)


class _Unpickler(pickle.Unpickler):
    """The pickle machine on mrisr's own records only: every global and storage is a local stand-in."""

    GLOBALS = {("collections", "OrderedDict"): _StateDict, ("torch._utils", "_rebuild_tensor_v2"): _RebuildTensor(),
               **{("torch", name): _StorageType(dtype) for name, dtype in STORAGES.items()}}

    def __init__(self, data: bytes, records: dict[str, int]):
        super().__init__(io.BytesIO(data))
        self.records, self.used = records, set()

    def find_class(self, module: str, name: str):
        if (module, name) not in self.GLOBALS:
            raise pickle.UnpicklingError(f"the global {module}.{name}")
        return self.GLOBALS[(module, name)]

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[1], _StorageType)
                and isinstance(pid[2], str) and type(pid[4]) is int and pid[4] >= 0):
            raise pickle.UnpicklingError("a persistent id other than a storage's")
        _, kind, key, _, numel = pid
        if self.records.get(f"data/{key}") != numel * DTYPES[kind.dtype] or key in self.used:
            raise pickle.UnpicklingError(f"storage {key[:40]!r} of another size than its record, or used twice")
        self.used.add(key)
        return _Storage(key, kind.dtype, numel)


def read_legacy(path: Path, fix: str) -> ModelFile:
    """A ``model.pt`` that an earlier mrisr wrote (``torch.save`` of generator, state_dict and card), read only as
    far as it is made of what mrisr wrote: anything else is refused with ``fix``."""
    refused = "is a torch file other than the model.pt an earlier mrisr wrote (plain data and stored tensors)"
    try:
        _check_record_count(path, refused, fix)
        archive = zipfile.ZipFile(path)
        entries = archive.infolist()
        prefixes = {entry.filename.partition("/")[0] for entry in entries}
        if len(prefixes) != 1 or any(e.compress_type != zipfile.ZIP_STORED or e.flag_bits & 1 for e in entries):
            raise InputError(path, f"{refused}: its records are compressed, encrypted or in several folders", fix)
        prefix = f"{prefixes.pop()}/"
        records = {e.filename.removeprefix(prefix): e.file_size for e in entries}
        if sum(records.values()) > os.stat(path).st_size or not 0 < records.get("data.pkl", 0) <= MAX_HEADER_BYTES:
            raise InputError(path, f"{refused}: its records declare more bytes than it holds", fix)
        if archive.read(prefix + "byteorder") != b"little":
            raise InputError(path, f"{refused}: big-endian tensors", fix)
        data = archive.read(prefix + "data.pkl")
        unknown = {op.name for op, _, _ in pickletools.genops(data)} - PICKLE_OPCODES
        if unknown:
            raise InputError(path, f"{refused}: pickle opcodes {', '.join(sorted(unknown))}", fix)
        bundle = _Unpickler(data, records).load()
        if not (isinstance(bundle, dict) and {"generator", "state_dict", "card"} <= bundle.keys()
                and isinstance(bundle["state_dict"], dict)
                and all(isinstance(t, _TensorRecord) for t in bundle["state_dict"].values())):
            raise InputError(path, "is a torch file without mrisr's generator config, weights and model card", fix)
        generator, card = (_plain(path, bundle[key], key, fix) for key in ("generator", "card"))
        shapes = {name: (t.storage.dtype, t.shape) for name, t in bundle["state_dict"].items()}
        tensors = {name: _tensor(archive.read(f"{prefix}data/{t.storage.key}"), t.storage.dtype, t.shape)
                   for name, t in bundle["state_dict"].items()}
    except InputError:
        raise
    except Exception as exc:  # a damaged zip or pickle fails anywhere (BadZipFile, UnpicklingError, KeyError, ...)
        raise InputError(path, f"{refused} ({type(exc).__name__}: {exc})"[:400], fix) from None
    return ModelFile(path, generator, card, shapes, legacy=True, fix=fix, _tensors=tensors)


def _check_record_count(path: Path, refused: str, fix: str) -> None:
    """The zip's end record (torch writes no comment, so it ends the file) lists at most a generator's records and a
    central directory that size: zipfile would otherwise hold millions of entries in memory before any check."""
    with open(path, "rb") as f:
        f.seek(-22, os.SEEK_END)
        signature, _, _, _, count, directory_bytes, _, comment = struct.unpack("<4s4H2LH", f.read(22))
    if signature != b"PK\x05\x06" or comment or count > MAX_TENSORS + 16 or directory_bytes > 2**10 * (MAX_TENSORS + 16):
        raise InputError(path, f"{refused}: an end record of {count:,} records", fix)


def _plain(path: Path, value, what: str, fix: str):
    """``value`` as JSON would give it (lists for tuples), within :func:`check_plain_data`'s bounds."""
    check_plain_data(value, path, what, fix)
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as exc:
        raise InputError(path, f"has a {what} that is not plain data ({exc})", fix) from None


#: Bounds of a legacy card's plain data, walked before it is used: a pickle's memo lets a small file hold one object
#: many times over (a 128 KB file that prints as 100 GB of JSON) or a list that holds itself.
MAX_NODES = 200_000
MAX_CHARACTERS = 2**24


def check_plain_data(value, path: str | Path, what: str, fix: str) -> None:
    """``value`` within the node, depth and character budget (a cycle exceeds the depth)."""
    budget = {"nodes": MAX_NODES, "characters": MAX_CHARACTERS}

    def walk(node, depth: int) -> None:
        budget["nodes"] -= 1
        if depth > MAX_DEPTH:
            raise InputError(path, f"has a {what} nested deeper than {MAX_DEPTH} levels (or holding itself)", fix)
        if isinstance(node, (str, bytes)):
            budget["characters"] -= len(node)
        if budget["nodes"] < 0 or budget["characters"] < 0:
            raise InputError(path, f"has a {what} larger than any mrisr writes (over {MAX_NODES:,} values or "
                                   f"{MAX_CHARACTERS:,} characters, counting repeats)", fix)
        if isinstance(node, dict):
            for key, item in node.items():
                walk(key, depth + 1)
                walk(item, depth + 1)
        elif isinstance(node, (list, tuple)):
            for item in node:
                walk(item, depth + 1)

    walk(value, 0)


def _tensor(data: bytes, dtype: str, shape: tuple[int, ...]):
    import torch

    kind = getattr(torch, SAFETENSORS_DTYPE[dtype])
    return torch.frombuffer(bytearray(data), dtype=kind).reshape(shape) if data else torch.zeros(shape, dtype=kind)
