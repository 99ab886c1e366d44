import functools
import json
import pickle
import pickletools
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mrisr.cli import main
from mrisr.errors import InputError
from mrisr.model_card import load_model
from mrisr.models.registry import build
from tests.conftest import filled_variant, mrisr_with_peak_memory, read_model_parts, write_model, write_model_parts

GENERATOR = {"name": "rrdb", "channels": 4, "growth": 4, "blocks": 1, "scale": 2}


LIMITS = "asks for a generator outside mrisr's limits"


@pytest.mark.parametrize("change, message", [
    ({"scale": 16}, f"{LIMITS}.*scale"), ({"channels": 4096}, f"{LIMITS}.*channels"),
    ({"blocks": 10**6}, f"{LIMITS}.*blocks"), ({"name": "vnet.build"}, f"{LIMITS}.*generator.name"),
    ({"name": "vnet"}, "needs the generator plugin 'vnet', which is not installed")])
def test_a_model_file_asking_for_too_much_is_refused_before_anything_is_built(tmp_path, monkeypatch, change, message):
    path = _edited(tmp_path, lambda b: b.update(generator=dict(GENERATOR, **change)))
    monkeypatch.setattr("mrisr.inference.build", lambda *a: pytest.fail("built a network"))
    with pytest.raises(InputError, match=f"model.safetensors: {message}"):
        load_model(path)
    lr = tmp_path / "lr.nii.gz"
    nib.save(nib.Nifti1Image(np.random.default_rng(0).random((8, 8, 8), dtype=np.float32), np.eye(4)), lr)
    assert main(["super-resolve", "--model", str(path), str(lr), str(tmp_path / "sr.nii.gz")]) == 2


def _edited(tmp_path, edit, legacy: bool = False):
    """A model file of GENERATOR, its parts changed by ``edit``; ``legacy``: written as an earlier mrisr's model.pt."""
    path = write_model(tmp_path / "model.safetensors", GENERATOR)
    parts = read_model_parts(path)
    edit(parts)
    if legacy:
        path.unlink()
    return write_model_parts(tmp_path / ("model.pt" if legacy else "model.safetensors"), parts, legacy)


def _super_resolve(tmp_path, model):
    """``mrisr super-resolve`` with ``model`` in a process of its own: exit code, stderr, peak memory (MB)."""
    lr = tmp_path / "lr.nii.gz"
    nib.save(nib.Nifti1Image(np.random.default_rng(0).random((8, 8, 8), dtype=np.float32), np.eye(4)), lr)
    return mrisr_with_peak_memory("super-resolve", "--model", model, lr, tmp_path / "sr.nii.gz",
                                  stderr_file=tmp_path / "stderr")


def test_small_weights_under_a_wide_config_are_refused_without_building_it(tmp_path):
    """Channels within the schema's limits, weights of a 4-channel net: the file is 100 KB, the network it asks for
    (256 channels) 390 MB. Refused on the meta device, at the memory of a file whose card is damaged."""
    wide = _edited(tmp_path / "wide", lambda b: b.update(generator=dict(GENERATOR, channels=256, growth=256, blocks=1)))
    code, stderr, peak = _super_resolve(tmp_path / "wide", wide)
    assert code == 2 and f"{wide}: holds weights that do not fit its generator config" in stderr
    assert "Fix: retrain" in stderr and "Traceback" not in stderr
    damaged = _edited(tmp_path / "damaged", lambda b: b["card"].pop("scale"))
    baseline = _super_resolve(tmp_path / "damaged", damaged)[2]
    assert peak - baseline < 100, f"{peak - baseline:.0f} MB more than refusing a damaged card"
    assert not (tmp_path / "wide" / "sr.nii.gz").exists()


@pytest.mark.parametrize("scale", [0, None, 5, [2, 2], "2"])
def test_a_card_whose_scale_is_wrong_is_refused(tmp_path, scale):
    edit = (lambda b: b["card"].pop("scale")) if scale is None else (lambda b: b["card"].update(scale=scale))
    path = _edited(tmp_path, edit)
    with pytest.raises(InputError, match=r"model.safetensors: has a damaged model card \((scale|card): .*Fix: retrain"):
        load_model(path)
    lr = tmp_path / "lr.nii.gz"
    nib.save(nib.Nifti1Image(np.random.default_rng(0).random((8, 8, 8), dtype=np.float32), np.eye(4)), lr)
    assert main(["super-resolve", "--model", str(path), str(lr), str(tmp_path / "sr.nii.gz")]) == 2


@pytest.mark.parametrize("scale, message", [(4, "has a card of scale 2 but a generator of scale 4"),
                                            (8, "asks for a generator outside")])
def test_a_card_of_another_scale_than_its_generator_is_refused(tmp_path, scale, message):
    """A generator at another scale the schema allows (4) than its card's (2), or at one it does not (8)."""
    path = _edited(tmp_path, lambda b: b["generator"].update(scale=scale))
    with pytest.raises(InputError, match=f"model.safetensors: {message}"):
        load_model(path)


@pytest.mark.parametrize("legacy", [False, True])
def test_a_weights_only_file_without_a_card_is_refused_with_the_fix(tmp_path, legacy):
    path = tmp_path / "model"
    if legacy:
        torch.save({"generator": GENERATOR, "state_dict": {}}, path)
    else:
        from safetensors.torch import save_file

        save_file({"w": torch.zeros(2)}, path, metadata={"generator": json.dumps(GENERATOR)})
    with pytest.raises(InputError, match=f"{path}: .*without.*model card.*Fix: retrain"):
        load_model(path)


def test_model_card_prints_what_training_wrote(tmp_path, rng, capsys):
    from mrisr.train.gan import train_variant
    from tests.conftest import train_settings

    hr = []
    for i in range(2):
        hr.append(tmp_path / f"sub-0{i}_T1w.nii.gz")
        nib.save(nib.Nifti1Image(rng.normal(size=(20, 18, 22)).astype(np.float32), np.diag([0.7, 0.7, 0.7, 1])),
                 hr[-1])
    variant = filled_variant({"kind": "gan", "generator": {"name": "rrdb", "channels": 4, "growth": 4, "blocks": 1},
                              "discriminator": {"name": "patch", "channels": [4, 8]}, "losses": {"feature": 0}})
    settings = train_settings(steps=2, batch_size=1, patch_size=16, checkpoint_every=2,
                              degradation={"method": "nearest", "blur_fwhm": 2.0})
    provenance = {"variant": "esrgan", "dataset": "demo", "subjects": ["00", "01"],
                  "preprocessing": {"crop": "brain", "margin": 4, "normalise": "volume"}}
    import dataclasses

    out = train_variant([str(p) for p in hr], variant, dataclasses.asdict(settings), provenance, str(tmp_path / "m"),
                        threads=1, processes=1)
    assert main(["model-card", str(out["model"]), "--json"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["variant"] == "esrgan" and card["variant_config"] == variant and card["scale"] == 2
    assert card["hr_voxel_mm"] == pytest.approx(0.7) and card["lr_voxel_mm"] == pytest.approx(1.4)
    assert card["preprocessing"] == {"orientation": "RAS", "crop": "brain", "margin": 4, "normalise": "volume"}
    assert card["training"] == {"dataset": "demo", "subjects": ["00", "01"], "steps": 2, "batch_size": 1, "seed": 0,
                                "start": "scratch"}
    assert card["degradation"] == {"method": "nearest", "blur_fwhm": 2.0} and card["metrics"] is None
    assert card["lr_grid"] == "corner"  # decimation's
    assert main(["model-card", str(out["model"])]) == 0
    text = capsys.readouterr().out
    assert "LR grid: corner (LR voxel i at HR voxel scale*i" in text and "not recorded" not in text
    assert "variant: esrgan" in text and "LR voxels 1.4 mm -> HR voxels 0.7 mm" in text and "00, 01" in text
    assert "generator's start: scratch (random weights)" in text
    (tmp_path / "metrics.csv").write_text("subject,psnr,ssim\n03,30.0,0.90\n05,32.0,0.94\n")
    assert main(["model-card", str(out["model"]), "--metrics", str(tmp_path / "metrics.csv"), "--degradation",
                 "nearest", "--out", str(tmp_path / "card.safetensors")]) == 0
    assert "test-set metrics (2 subjects, LR by nearest; means): psnr 31, ssim 0.92" in capsys.readouterr().out
    metrics = load_model(tmp_path / "card.safetensors")[2]["metrics"]
    assert metrics["per_subject"] == {"03": {"psnr": 30.0, "ssim": 0.90}, "05": {"psnr": 32.0, "ssim": 0.94}}


def test_a_card_written_before_the_grid_was_recorded_keeps_decimations_grid_and_says_so(tmp_path, capsys):
    """Cards without ``lr_grid`` were all trained on decimation's grid (LR voxel i at HR voxel f*i): super-resolve
    keeps it (thin voxel 0 on the scan's voxel 0, not half a slab before), and the card says it was not recorded;
    another grid than the two is refused as any card field outside its type."""
    from mrisr.cli import main

    path = _edited(tmp_path, lambda parts: parts["card"].update(degradation={"method": "blur"}) or
                   parts["card"].pop("lr_grid"))
    assert main(["model-card", str(path)]) == 0
    text = capsys.readouterr().out
    assert "LR grid: corner (LR voxel i at HR voxel scale*i" in text and "not recorded" in text
    lr = np.random.default_rng(0).normal(size=(6, 6, 6)).astype(np.float32)
    nib.save(nib.Nifti1Image(lr, np.diag([2.0, 2.0, 2.0, 1.0])), tmp_path / "lr.nii.gz")
    assert main(["super-resolve", "--model", str(path), str(tmp_path / "lr.nii.gz"), str(tmp_path / "sr.nii.gz")]) == 0
    np.testing.assert_allclose(nib.load(tmp_path / "sr.nii.gz").affine, np.diag([1.0, 1.0, 1.0, 1.0]))
    path = _edited(tmp_path, lambda parts: parts["card"].update(lr_grid="centre"))
    with pytest.raises(InputError, match="lr_grid"):
        load_model(path)


def test_nan_weights_are_refused(tmp_path):
    path = _edited(tmp_path, lambda b: b["state_dict"][next(iter(b["state_dict"]))].fill_(float("nan")))
    with pytest.raises(InputError, match="model.safetensors: holds NaN or Inf weights"):
        load_model(path)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=5))
def test_a_damaged_model_file_is_read_or_refused_with_the_file_named(tmp_path, edits):
    """Any bytes changed, of a model file or an earlier version's model.pt: each failure is the file named."""
    path = tmp_path / "model.safetensors"
    if not path.exists():
        write_model(path, GENERATOR)
        write_model_parts(tmp_path / "model.pt", read_model_parts(path), legacy=True)
    for original in (path, tmp_path / "model.pt"):
        _damage(original, edits, tmp_path / f"damaged{original.suffix}")


def _damage(path, edits, damaged):
    raw = bytearray(path.read_bytes())
    for where, value in edits:
        raw[int(where * len(raw))] = value
    damaged.write_bytes(bytes(raw))
    try:
        load_model(damaged)
    except InputError as exc:
        assert str(exc).startswith(f"{damaged}: ") and "Fix: retrain" in str(exc)


@pytest.mark.parametrize("voxels", [{"hr_voxel_mm": float("nan")}, {"lr_voxel_mm": float("nan")},
                                    {"hr_voxel_mm": float("inf"), "lr_voxel_mm": float("inf")},
                                    {"lr_voxel_mm": 3.0}])
def test_a_card_whose_voxel_sizes_do_not_hold_together_is_refused(tmp_path, capsys, voxels):
    """NaN passes a JSON-schema exclusiveMinimum; the LR voxel must be the HR voxel times the scale."""
    path = _edited(tmp_path, lambda b: b["card"].update(voxels))
    assert main(["model-card", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: has a damaged model card (voxel sizes" in err and "Fix: retrain" in err


def _views_of_one_float(config: dict) -> dict:
    """A state dict of ``config``'s exact names and shapes, every tensor a stride-0 view of one 4-byte storage."""
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in build("generator", config).state_dict().items()}
    one = torch.zeros(1)
    return {k: one.expand(shape) if len(shape) else torch.zeros(()) for k, shape in shapes.items()}


@functools.cache
def _refusal_baseline() -> float:
    """Peak memory (MB) of ``mrisr model-card`` refusing a card with a missing key: what a refusal costs at least."""
    folder = Path(tempfile.mkdtemp(prefix="baseline"))
    damaged = _edited(folder, lambda b: b["card"].pop("scale"))
    return mrisr_with_peak_memory("model-card", damaged, stderr_file=folder / "err")[2]


def _refused_at_small_memory(tmp_path, path, *expected: str, command=("model-card",)) -> None:
    """``mrisr COMMAND path`` in a process of its own (``super-resolve``: ``--model path`` on a small scan into
    ``tmp_path``): exit 2, the file and ``expected`` named with the fix, no traceback, nothing written, under a
    minute, under 1 GiB and at most 512 MB over refusing a card with a missing key."""
    started = time.monotonic()
    before = set(tmp_path.rglob("*"))
    if command[0] == "super-resolve":
        lr = tmp_path.parent / "lr.nii.gz"
        nib.save(nib.Nifti1Image(np.random.default_rng(0).random((8, 8, 8), dtype=np.float32), np.eye(4)), lr)
        arguments = ("super-resolve", "--model", path, lr, tmp_path / "sr.nii.gz")
    else:
        arguments = (*command, path)
    code, stderr, peak = mrisr_with_peak_memory(*arguments, stderr_file=tmp_path.parent / f"{tmp_path.name}.err")
    assert code == 2 and f"{path}: " in stderr and "Fix: " in stderr and "Traceback" not in stderr, stderr
    assert all(text in stderr for text in expected), stderr
    assert time.monotonic() - started < 60 and set(tmp_path.rglob("*")) == before
    assert peak < 1024 and peak - _refusal_baseline() < 512, f"{peak:.0f} MB, {_refusal_baseline():.0f} MB to refuse"


@pytest.mark.parametrize("config", [GENERATOR, dict(GENERATOR, channels=512, growth=512, blocks=64)])
def test_legacy_weights_that_are_views_of_a_few_bytes_are_refused_at_small_memory(tmp_path, config):
    """An earlier version's model.pt of a few KB whose every weight expands one float (at the schema's widest, 20 G
    parameters): refused as no tensor mrisr wrote, before any is built."""
    path = _edited(tmp_path / "files", lambda b: b.update(generator=config, state_dict=_views_of_one_float(config)),
                   legacy=True)
    assert path.stat().st_size < 2**20
    _refused_at_small_memory(tmp_path / "files", path, "a tensor that is a strided view")


def test_legacy_weights_sharing_one_storage_are_refused(tmp_path, capsys):
    def share(bundle):
        state = bundle["state_dict"]
        first, second = [k for k, v in state.items() if v.dim() == 5][:2]
        base = torch.zeros(state[first].numel() + state[second].numel())
        state[first] = base[:state[first].numel()].view(state[first].shape)
        state[second] = base[state[first].numel():].view(state[second].shape)

    path = _edited(tmp_path, share, legacy=True)
    assert main(["model-card", str(path)]) == 2
    assert "a tensor that is part of its storage" in capsys.readouterr().err


def _memo_bomb():
    """Lists of one list: 8 levels of 1000 references, a few KB pickled, 10^24 strings written out."""
    value = ["subject"]
    for _ in range(8):
        value = [value] * 1000
    return value


def _holding_itself():
    loop = ["a"]
    loop.append(loop)
    return loop


@pytest.mark.parametrize("data, problem", [(_memo_bomb, "larger than any mrisr writes"),
                                           (_holding_itself, "nested deeper than")])
def test_a_legacy_card_that_would_print_without_end_is_refused_at_small_memory(tmp_path, data, problem):
    path = _edited(tmp_path / "files", lambda b: b["card"]["training"].update(subjects=data()), legacy=True)
    assert path.stat().st_size < 2**20
    _refused_at_small_memory(tmp_path / "files", path, f"has a card {problem}", command=("model-card", "--json"))


@pytest.mark.parametrize("depth", [3000, 100_000])
def test_a_legacy_card_nested_past_python_s_own_limits_is_refused(tmp_path, depth):
    """Lists nested ``depth`` deep, written as pickle opcodes (Python's pickler itself cannot write them)."""
    path = _edited(tmp_path / "files", lambda b: b["card"]["training"].update(subjects="SUBJECTS"), legacy=True)
    import zipfile

    with zipfile.ZipFile(path) as source:
        data = source.read(next(n for n in source.namelist() if n.endswith("/data.pkl")))
    nested = b"]" * depth + b"X\x01\x00\x00\x00x" + b"a" * depth  # EMPTY_LIST ... 'x' APPEND ...
    deep = _legacy_pickle(tmp_path / "files", data.replace(b"X\x08\x00\x00\x00SUBJECTS", nested), "deep.pt")
    _refused_at_small_memory(tmp_path / "files", deep, "has a card nested deeper than", command=("model-card", "--json"))


@pytest.mark.parametrize("depth", [40, 100_000])
def test_a_card_nested_deeper_than_any_mrisr_writes_is_refused(tmp_path, depth):
    """JSON nested past the cap, and past Python's own parser."""
    path = _edited(tmp_path / "files", lambda b: b["card"]["training"].update(subjects="SUBJECTS"))
    parts = read_model_parts(path)
    text = json.dumps(parts["card"]).replace('"SUBJECTS"', "[" * depth + "]" * depth)
    _rewrite_metadata(path, parts, card=text)
    _refused_at_small_memory(tmp_path / "files", path, "has a card nested deeper than 32 levels")


def _rewrite_metadata(path, parts, **metadata):
    from safetensors.torch import save_file

    save_file(parts["state_dict"], path, metadata={"format": "pt", "generator": json.dumps(parts["generator"]),
                                                   "card": json.dumps(parts["card"]), **metadata})


def _header(path) -> tuple[dict, bytes]:
    raw = path.read_bytes()
    size = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8:8 + size]), raw[8 + size:]


def _with_header(path, header: dict, data: bytes, declared: int | None = None) -> None:
    text = json.dumps(header).encode()
    path.write_bytes((declared if declared is not None else len(text)).to_bytes(8, "little") + text + data)


def _claims_terabytes(path):
    header, data = _header(path)
    _with_header(path, header, data, declared=2**40)


def _many_tensors(path):
    header, data = _header(path)
    header.update({f"t{i}": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]} for i in range(20_000)})
    _with_header(path, header, data)


def _overlapping(path):
    """Every tensor's offsets pointing at the first one's bytes: a small file declaring a large model."""
    header, data = _header(path)
    first = min(v["data_offsets"][0] for k, v in header.items() if k != "__metadata__")
    for name, entry in header.items():
        if name != "__metadata__" and entry["shape"] == [4, 1, 3, 3, 3]:
            entry["data_offsets"] = [first, first + 4 * 108]
    _with_header(path, header, data)


def _huge_shape(path):
    header, data = _header(path)
    name = next(k for k, v in header.items() if k != "__metadata__" and len(v["shape"]) == 5)
    header[name]["shape"] = [2**20, 2**20, 1, 1, 1]
    _with_header(path, header, data)


@pytest.mark.parametrize("forge, problem", [
    (_claims_terabytes, "its header would be 1,099,511,627,776 bytes"), (_many_tensors, "20,040 tensors, more than"),
    (_overlapping, "overlap or leave gaps"), (_huge_shape, "damaged header entry")])
def test_a_forged_safetensors_header_is_refused_before_it_is_parsed_or_read(tmp_path, forge, problem):
    path = write_model(tmp_path / "files" / "model.safetensors", GENERATOR)
    forge(path)
    _refused_at_small_memory(tmp_path / "files", path, problem, command=("super-resolve",))


def _legacy_pickle(tmp_path, payload: bytes, name="model.pt"):
    """A torch zip written as torch writes one (stored records), its pickle ``payload``."""
    path = _edited(tmp_path, lambda b: None, legacy=True)
    import zipfile

    with zipfile.ZipFile(path) as source:
        records = {info.filename: source.read(info) for info in source.infolist()}
    target = tmp_path / name
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as out:
        for filename, data in records.items():
            out.writestr(filename, payload if filename.endswith("/data.pkl") else data)
    return target


class _Allocates:
    def __reduce__(self):
        return bytearray, (2**34,)


class _RebuildsFromType:
    def __reduce__(self):
        return torch._tensor._rebuild_from_type_v2, (torch.zeros, torch.Tensor, ((3,),), {"numel": 10**12})


@pytest.mark.parametrize("make, problem", [
    (lambda: pickle.dumps({"generator": GENERATOR, "state_dict": {}, "card": _Allocates()}, protocol=2),
     "bytearray"),
    (lambda: pickle.dumps({"generator": GENERATOR, "state_dict": {"w": _RebuildsFromType()}, "card": {}}, protocol=2),
     "the global torch._tensor._rebuild_from_type_v2"),
    (lambda: pickle.dumps({"generator": GENERATOR, "state_dict": {}, "card": {"training": {"dataset": {1, 2}}}},
                          protocol=4), "pickle opcodes"),
    (lambda: pickle.dumps({"generator": GENERATOR, "state_dict": {}, "card": {"s": frozenset({1})}}, protocol=2),
     "frozenset")])
def test_a_legacy_pickle_beyond_what_mrisr_wrote_is_refused_unrun(tmp_path, make, problem):
    """Allocating globals, tensors rebuilt with attributes that override their methods, sets the size checks do not
    walk: nothing of it is run."""
    path = _legacy_pickle(tmp_path / "files", make())
    _refused_at_small_memory(tmp_path / "files", path, "is a torch file other than the model.pt an earlier mrisr "
                                                       "wrote", problem, command=("super-resolve",))


def test_a_legacy_tensor_given_attributes_is_refused(tmp_path):
    """BUILD on a rebuilt tensor: the attributes that would override ``numel`` or ``stride`` are never set."""
    path = _edited(tmp_path / "files", lambda b: None, legacy=True)
    import zipfile

    with zipfile.ZipFile(path) as source:
        name = next(n for n in source.namelist() if n.endswith("/data.pkl"))
        data = source.read(name)
    ops = [(op.name, pos) for op, _, pos in pickletools.genops(data) if not op.name.endswith("PUT")]
    reduce_at = next(pos for (before, _), (name, pos) in zip(ops, ops[1:]) if name == "REDUCE" and before == "TUPLE")
    attack = b"}X\x05\x00\x00\x00numelK\x01sb"  # EMPTY_DICT, 'numel', 1, SETITEM, BUILD
    patched = _legacy_pickle(tmp_path / "files", data[:reduce_at + 1] + attack + data[reduce_at + 1:], "patched.pt")
    _refused_at_small_memory(tmp_path / "files", patched, "attributes set on a TensorRecord")


def test_a_legacy_file_with_deflated_records_is_refused(tmp_path):
    """A deflated record inflates ~800x inside a loader: mrisr never wrote one."""
    import zipfile

    path = _edited(tmp_path / "files", lambda b: None, legacy=True)
    with zipfile.ZipFile(path) as source:
        records = {info.filename: source.read(info) for info in source.infolist()}
    deflated = tmp_path / "files" / "deflated.pt"
    with zipfile.ZipFile(deflated, "w", zipfile.ZIP_DEFLATED) as out:
        for filename, data in records.items():
            out.writestr(filename, data)
    _refused_at_small_memory(tmp_path / "files", deflated, "records are compressed")


def test_an_earlier_versions_model_pt_still_applies_and_upgrades(tmp_path, capsys, caplog):
    """The same parts as an earlier version's model.pt: the same card and the same SR; --upgrade writes the model
    file, which then loads as safetensors, and refuses to overwrite anything."""
    new = write_model(tmp_path / "model.safetensors", GENERATOR)
    old = write_model_parts(tmp_path / "model.pt", read_model_parts(new), legacy=True)
    assert old.read_bytes()[:2] == b"PK"
    lr = tmp_path / "lr.nii.gz"
    nib.save(nib.Nifti1Image(np.random.default_rng(0).random((8, 8, 8), dtype=np.float32), np.diag([2, 2, 2, 1])), lr)
    for model in (old, new):
        assert main(["super-resolve", "--model", str(model), str(lr), str(tmp_path / f"{model.suffix[1:]}.nii.gz")]) == 0
    sr = [np.asanyarray(nib.load(tmp_path / f"{n}.nii.gz").dataobj) for n in ("pt", "safetensors")]
    assert np.array_equal(*sr)
    said = [r.getMessage() for r in caplog.records if "--upgrade" in r.getMessage()]
    assert said == [f"{old}: an earlier mrisr's model.pt, read by the strict reader; mrisr model-card --upgrade {old} "
                    "NEW.safetensors rewrites it as the current model file"]
    upgraded = tmp_path / "upgraded.safetensors"
    assert main(["model-card", "--upgrade", str(old), str(upgraded), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == read_model_parts(new)["card"]
    assert upgraded.read_bytes()[8:9] == b"{" and read_model_parts(upgraded)["generator"] == GENERATOR
    assert all(torch.equal(a, b) for a, b in zip(read_model_parts(upgraded)["state_dict"].values(),
                                                 read_model_parts(new)["state_dict"].values()))
    before = new.read_bytes()
    assert main(["model-card", "--upgrade", str(old), str(new)]) == 2
    assert "exists already" in capsys.readouterr().err and new.read_bytes() == before


def test_a_card_s_text_reaches_the_terminal_with_its_control_characters_escaped(tmp_path, capsys):
    """mrisr model-card prints a stranger's card: its names may hold terminal escapes, carriage returns or
    bidirectional overrides, each shown as its escape, the card's own lines kept."""
    path = write_model(tmp_path / "model.safetensors", GENERATOR, variant_name="esr\x1b[2Jgan\r\u202eok",
                       training={"dataset": "demo\x07", "subjects": ["01"], "steps": 1, "batch_size": 1, "seed": 0})
    assert main(["model-card", str(path)]) == 0
    out = capsys.readouterr().out
    assert "variant: esr\\x1b[2Jgan\\r\\u202eok" in out and "trained on: demo\\x07," in out
    assert not any(c in out for c in "\x1b\r\x07\u202e") and out.count("\n") >= 8
