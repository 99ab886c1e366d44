import json

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
from tests.conftest import filled_variant, mrisr_with_peak_memory, write_model

GENERATOR = {"name": "rrdb", "channels": 4, "growth": 4, "blocks": 1, "scale": 2}


LIMITS = "asks for a generator outside mrisr's limits"


@pytest.mark.parametrize("change, message", [
    ({"scale": 16}, f"{LIMITS}.*scale"), ({"channels": 4096}, f"{LIMITS}.*channels"),
    ({"blocks": 10**6}, f"{LIMITS}.*blocks"), ({"name": "vnet.build"}, f"{LIMITS}.*generator.name"),
    ({"name": "vnet"}, "needs the generator plugin 'vnet', which is not installed")])
def test_a_model_file_asking_for_too_much_is_refused_before_anything_is_built(tmp_path, monkeypatch, change, message):
    path = write_model(tmp_path / "model.pt", GENERATOR)
    bundle = torch.load(path, weights_only=True)
    bundle["generator"] = dict(GENERATOR, **change)
    torch.save(bundle, path)
    monkeypatch.setattr("mrisr.inference.build", lambda *a: pytest.fail("built a network"))
    with pytest.raises(InputError, match=f"model.pt: {message}"):
        load_model(path)
    lr = tmp_path / "lr.nii.gz"
    nib.save(nib.Nifti1Image(np.random.default_rng(0).random((8, 8, 8), dtype=np.float32), np.eye(4)), lr)
    assert main(["super-resolve", "--model", str(path), str(lr), str(tmp_path / "sr.nii.gz")]) == 2


def _edited(tmp_path, edit):
    path = write_model(tmp_path / "model.pt", GENERATOR)
    bundle = torch.load(path, weights_only=True)
    edit(bundle)
    torch.save(bundle, path)
    return path


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
    with pytest.raises(InputError, match=r"model.pt: has a damaged model card \((scale|card): .*Fix: retrain"):
        load_model(path)
    lr = tmp_path / "lr.nii.gz"
    nib.save(nib.Nifti1Image(np.random.default_rng(0).random((8, 8, 8), dtype=np.float32), np.eye(4)), lr)
    assert main(["super-resolve", "--model", str(path), str(lr), str(tmp_path / "sr.nii.gz")]) == 2


@pytest.mark.parametrize("scale, message", [(4, "has a card of scale 2 but a generator of scale 4"),
                                            (8, "asks for a generator outside")])
def test_a_card_of_another_scale_than_its_generator_is_refused(tmp_path, scale, message):
    """A generator at another scale the schema allows (4) than its card's (2), or at one it does not (8)."""
    path = _edited(tmp_path, lambda b: b["generator"].update(scale=scale))
    with pytest.raises(InputError, match=f"model.pt: {message}"):
        load_model(path)


def test_a_weights_only_file_without_a_card_is_refused_with_the_fix(tmp_path):
    torch.save({"generator": GENERATOR, "state_dict": {}}, tmp_path / "model.pt")
    with pytest.raises(InputError, match="without|model card.*Fix: retrain"):
        load_model(tmp_path / "model.pt")


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
    assert main(["model-card", str(out["model"])]) == 0
    text = capsys.readouterr().out
    assert "variant: esrgan" in text and "LR voxels 1.4 mm -> HR voxels 0.7 mm" in text and "00, 01" in text
    assert "generator's start: scratch (random weights)" in text
    (tmp_path / "metrics.csv").write_text("subject,psnr,ssim\n03,30.0,0.90\n05,32.0,0.94\n")
    assert main(["model-card", str(out["model"]), "--metrics", str(tmp_path / "metrics.csv"), "--degradation",
                 "nearest", "--out", str(tmp_path / "card.pt")]) == 0
    assert "test-set metrics (2 subjects, LR by nearest; means): psnr 31, ssim 0.92" in capsys.readouterr().out
    metrics = load_model(tmp_path / "card.pt")[2]["metrics"]
    assert metrics["per_subject"] == {"03": {"psnr": 30.0, "ssim": 0.90}, "05": {"psnr": 32.0, "ssim": 0.94}}


def test_nan_weights_are_refused(tmp_path):
    path = _edited(tmp_path, lambda b: b["state_dict"][next(iter(b["state_dict"]))].fill_(float("nan")))
    with pytest.raises(InputError, match="model.pt: holds NaN or Inf weights"):
        load_model(path)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=5))
def test_a_damaged_model_file_is_read_or_refused_with_the_file_named(tmp_path, edits):
    """Any bytes changed: torch's unpickler fails in many ways (KeyError, IndexError, ...); each is the file named."""
    path = tmp_path / "model.pt"
    if not path.exists():
        write_model(path, GENERATOR)
    raw = bytearray(path.read_bytes())
    for where, value in edits:
        raw[int(where * len(raw))] = value
    damaged = tmp_path / "damaged.pt"
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


@pytest.mark.parametrize("config", [GENERATOR, dict(GENERATOR, channels=512, growth=512, blocks=64)])
def test_weights_that_are_views_of_a_few_bytes_are_refused_at_small_memory(tmp_path, config):
    """A file of a few KB whose every weight expands one float: at the schema's widest (20 G parameters) the
    parameter cap refuses it; at any size, the weights that do not own their storage."""
    path = _edited(tmp_path, lambda b: b.update(generator=config, state_dict=_views_of_one_float(config)))
    assert path.stat().st_size < 2**20
    code, stderr, peak = _super_resolve(tmp_path, path)
    expected = "holds weights that are views of other memory" if config is GENERATOR else "parameters, more than"
    assert code == 2 and f"{path}: " in stderr and expected in stderr and "Traceback" not in stderr
    damaged = _edited(tmp_path / "damaged", lambda b: b["card"].pop("scale"))
    baseline = _super_resolve(tmp_path / "damaged", damaged)[2]  # what a child forked from here starts at
    assert peak - baseline < 512 and not (tmp_path / "sr.nii.gz").exists()


def test_two_weights_sharing_one_storage_are_refused(tmp_path, capsys):
    def share(bundle):
        state = bundle["state_dict"]
        first, second = [k for k, v in state.items() if v.dim() == 5][:2]
        if state[first].shape == state[second].shape:
            state[second] = state[first]
        else:  # two views into one storage, each the right shape
            base = torch.zeros(state[first].numel() + state[second].numel())
            state[first] = base[:state[first].numel()].view(state[first].shape)
            state[second] = base[state[first].numel():].view(state[second].shape)

    path = _edited(tmp_path, share)
    assert main(["model-card", str(path)]) == 2
    assert "holds weights that are views of other memory" in capsys.readouterr().err


def _nested(depth):
    value = "x"
    for _ in range(depth):
        value = [value]
    return value


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
                                           (_holding_itself, "nested deeper than"),
                                           (lambda: _nested(200), "nested deeper than")])
def test_a_card_that_would_print_without_end_is_refused_at_small_memory(tmp_path, data, problem):
    path = _edited(tmp_path, lambda b: b["card"]["training"].update(subjects=data()))
    assert path.stat().st_size < 2**20
    code, stderr, peak = mrisr_with_peak_memory("model-card", path, "--json", stderr_file=tmp_path / "err")
    assert code == 2 and f"{path}: has a model card {problem}" in stderr and "Traceback" not in stderr
    damaged = _edited(tmp_path / "damaged", lambda b: b["card"].pop("scale"))
    baseline = mrisr_with_peak_memory("model-card", damaged, stderr_file=tmp_path / "damaged.err")[2]
    assert peak - baseline < 512


def test_a_card_s_text_reaches_the_terminal_with_its_control_characters_escaped(tmp_path, capsys):
    """mrisr model-card prints a stranger's card: its names may hold terminal escapes, carriage returns or
    bidirectional overrides, each shown as its escape, the card's own lines kept."""
    path = write_model(tmp_path / "model.pt", GENERATOR, variant_name="esr\x1b[2Jgan\r\u202eok",
                       training={"dataset": "demo\x07", "subjects": ["01"], "steps": 1, "batch_size": 1, "seed": 0})
    assert main(["model-card", str(path)]) == 0
    out = capsys.readouterr().out
    assert "variant: esr\\x1b[2Jgan\\r\\u202eok" in out and "trained on: demo\\x07," in out
    assert not any(c in out for c in "\x1b\r\x07\u202e") and out.count("\n") >= 8
