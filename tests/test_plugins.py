"""A generator from another installed package, found through its entry point (examples/plugin: mrisr-fsrcnn3d)."""

import sys

import nibabel as nib
import numpy as np
import pytest
import torch

from mrisr.errors import ConfigError, InputError
from mrisr.models.registry import build, plugin_provenance
from tests.conftest import head

OPTIONS = {"name": "fsrcnn3d", "features": 8, "shrunk": 4, "mapping": 1}


@pytest.fixture
def installed(plugin_site, monkeypatch):
    monkeypatch.syspath_prepend(str(plugin_site))
    yield plugin_site
    for name in [m for m in sys.modules if m.startswith("mrisr_fsrcnn3d")]:
        del sys.modules[name]


def _card(path, scale, **generator):
    from mrisr.model_card import make_card, save_model

    config = {**OPTIONS, **generator, "scale": scale}
    torch.manual_seed(0)
    network = build("generator", config)
    card = make_card(variant_name="fsrcnn", variant={"kind": "gan", "generator": config}, scale=scale,
                     hr_voxel_mm=1.0, preprocessing={"orientation": "RAS", "crop": "none", "margin": 0,
                                                     "normalise": "volume"},
                     degradation={"method": "slice_profile"}, plugin=plugin_provenance("generator", "fsrcnn3d"),
                     training={"dataset": "demo", "subjects": ["01"], "steps": 1, "batch_size": 1, "seed": 0})
    return save_model(path, config, network.state_dict(), card), network


def test_a_plugin_is_built_by_its_entry_point_name_at_any_scale(installed):
    network = build("generator", {**OPTIONS, "scale": [1, 1, 4]})
    assert network(torch.randn(1, 1, 5, 6, 3)).shape == (1, 1, 5, 6, 12)
    provenance = plugin_provenance("generator", "fsrcnn3d")
    assert provenance == {"entry_point": "fsrcnn3d", "group": "mrisr.generators", "value": "mrisr_fsrcnn3d:build",
                          "package": "mrisr-fsrcnn3d", "version": "0.1.0"}
    assert plugin_provenance("generator", "rrdb") is None


def test_an_unknown_name_names_the_built_ins_and_the_fix():
    with pytest.raises(ConfigError, match="'nosuch' is neither a built-in generator .*mdcsrn, rrdb.*install the"):
        build("generator", {"name": "nosuch", "scale": 2})


def test_a_plugin_card_applies_to_a_raw_scan_and_stops_without_its_package(installed, tmp_path, monkeypatch, capsys):
    """Through the command line: a thick-slice scan through the plugin's card is the network's one pass on the
    card's z-score; with the package gone, the card stops naming the package to install."""
    from mrisr.cli import main

    model, network = _card(tmp_path / "model.pt", [1, 1, 4])
    scan = head(np.random.default_rng(2))[:, :, ::4].astype(np.float32)
    nib.save(nib.Nifti1Image(scan, np.diag([1.0, 1.0, 4.0, 1.0])), tmp_path / "thick.nii.gz")
    assert main(["super-resolve", "--model", str(model), "--tile", "6", str(tmp_path / "thick.nii.gz"),
                 str(tmp_path / "sr.nii.gz")]) == 0
    z = (scan - scan.mean()) / scan.std()
    with torch.inference_mode():
        direct = network.eval()(torch.from_numpy(z)[None, None])[0, 0].numpy() * scan.std() + scan.mean()
    sr = nib.load(tmp_path / "sr.nii.gz")
    assert sr.shape == (20, 22, 20) and np.allclose(sr.header.get_zooms(), 1.0)
    np.testing.assert_allclose(np.asanyarray(sr.dataobj), direct, rtol=1e-4, atol=1e-3 * np.ptp(scan))
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(installed)])
    assert main(["super-resolve", "--model", str(model), str(tmp_path / "thick.nii.gz"), str(tmp_path / "b.nii.gz")]) == 2
    err = capsys.readouterr().err
    assert "needs the generator plugin 'fsrcnn3d' of mrisr-fsrcnn3d 0.1.0, which is not installed" in err
    assert "pip install mrisr-fsrcnn3d==0.1.0" in err and not (tmp_path / "b.nii.gz").exists()


@pytest.mark.parametrize("name", ["mrisr_fsrcnn3d:build", "os.system", "../evil", "fsrcnn3d; rm"])
def test_a_card_naming_a_module_path_is_refused_before_anything_is_imported(installed, tmp_path, name):
    from mrisr.model_card import load_model

    model, _ = _card(tmp_path / "model.pt", 2)
    bundle = torch.load(model, weights_only=True)
    bundle["generator"]["name"] = name
    torch.save(bundle, model)
    before = set(sys.modules)
    with pytest.raises(InputError, match="outside mrisr's limits \\(generator.name: .* does not match"):
        load_model(model)
    assert not {m for m in set(sys.modules) - before if not m.startswith(("jsonschema", "_"))}


def test_a_plugin_whose_stated_reach_is_too_small_is_refused(installed, tmp_path, monkeypatch):
    import mrisr_fsrcnn3d

    from mrisr.inference import load_generator

    model, _ = _card(tmp_path / "model.pt", 2)
    assert load_generator(model, "cpu")[0].reach == (5, 5, 5)  # 2 + 1 mapping conv + 1 + 1/2, rounded up
    monkeypatch.setattr(mrisr_fsrcnn3d.FSRCNN3d, "reach", property(lambda self: (1, 5, 5)))
    with pytest.raises(InputError, match=r"stated reach \(1, 5, 5\) is too small"):
        load_generator(model, "cpu")
    monkeypatch.setattr(mrisr_fsrcnn3d.FSRCNN3d, "reach", property(lambda self: None))
    with pytest.raises(InputError, match="states no reach"):
        load_generator(model, "cpu")
