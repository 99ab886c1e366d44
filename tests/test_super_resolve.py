"""The super-resolve stage (mrisr.super_resolve): scans in any storage and orientation, folders, model cards of any
scale, masks and voxel checks, through the command line and the workflow's options."""

import shlex
from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pytest
import torch

from mrisr.grid import LrGrid
from mrisr.inference import interpolate, load_generator, super_resolve
from mrisr.models.registry import build
from mrisr.scale import as_scale
from tests.conftest import head, inference_settings, write_model


def _stored(scan, affine, how, path):
    """The same scan stored as ``how``; returns the file and (a, b) of its real intensities a·scan + b."""
    if how == "uint8":
        img, ab = nib.Nifti1Image(scan, affine), (1.0, 0.0)
    elif how == "int16 with scl_slope/inter":
        img, ab = nib.Nifti1Image(scan.astype(np.int16), affine), (3.5, -200.0)
        img.header.set_data_dtype(np.int16)
        img.header.set_slope_inter(*ab)
    else:  # z-scored float
        mean, std = scan.mean(dtype=np.float64), scan.std(dtype=np.float64)
        img, ab = nib.Nifti1Image(((scan - mean) / std).astype(np.float32), affine), (1 / std, -mean / std)
    nib.save(img, path)
    return path, ab


@pytest.mark.parametrize("how", ["uint8", "int16 with scl_slope/inter", "z-scored float"])
@pytest.mark.parametrize("orientation", ["RAS", "LPS", "ASL"])
def test_the_same_scan_in_any_storage_gives_the_same_sr(tmp_path, rng, how, orientation):
    """Up to the scan's intensity affine and orientation the output is one and the same: the card's z-score
    removes the affine, the RAS+ reorientation the storage order; the output is back in the scan's units."""
    from mrisr.cli import main

    model = write_model(tmp_path / "model.safetensors", {"name": "rrdb", "channels": 4, "growth": 4, "blocks": 1, "scale": 2})
    scan, affine = head(np.random.default_rng(3)), np.diag([2.0, 2.0, 2.0, 1.0])
    reference, _ = _stored(scan, affine, "uint8", tmp_path / "ref.nii.gz")
    assert main(["super-resolve", "--model", str(model), str(reference), str(tmp_path / "ref_sr.nii.gz")]) == 0
    expected = nib.as_closest_canonical(nib.load(tmp_path / "ref_sr.nii.gz"))
    ras = nib.Nifti1Image(scan, affine)
    turned = ras.as_reoriented(nib.orientations.ornt_transform(nib.orientations.axcodes2ornt("RAS"),
                                                               nib.orientations.axcodes2ornt(tuple(orientation))))
    path, (a, b) = _stored(np.asarray(turned.dataobj), turned.affine, how, tmp_path / "in.nii.gz")
    assert main(["super-resolve", "--model", str(model), str(path), str(tmp_path / "sr.nii.gz")]) == 0
    out = nib.load(tmp_path / "sr.nii.gz")
    assert nib.aff2axcodes(out.affine) == tuple(orientation) and out.get_data_dtype() == np.float32
    got = nib.as_closest_canonical(out)
    np.testing.assert_allclose(got.affine, expected.affine, atol=1e-6)
    sr, ref = (np.asanyarray(got.dataobj) - b) / a, np.asanyarray(expected.dataobj)
    assert np.abs(sr - ref).max() <= 1e-4 * np.ptp(ref)
    # and the reference is the network on the card's z-score (crop none, whole volume), put back into 0..255 units
    z = (scan - scan.mean()) / scan.std()
    direct = super_resolve(load_generator(model)[0], z, 2, inference_settings(tile=160, halo=8), progress=False) * scan.std() + scan.mean()
    np.testing.assert_allclose(ref, direct, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("stored_as", ["RAS", "LPS", "PSL"])
def test_a_card_trained_on_stored_arrays_sees_every_scan_in_their_axes(tmp_path, stored_as):
    """A card whose training arrays were kept as stored (prepare.orientation: stored, here stored LAS) gets each scan
    in those axes whatever its own storage: the network on the LAS array of the scan (nibabel's reorientation,
    done here), the output back in the scan's orientation; a card of mixed orientations takes arrays as stored."""
    from mrisr.cli import main

    generator = {"name": "rrdb", "channels": 4, "growth": 4, "blocks": 1, "scale": 2}
    prep = {"crop": "none", "margin": 4, "normalise": "volume"}
    models = {axes: write_model(tmp_path / f"{axes}.safetensors", generator, preprocessing={"orientation": axes, **prep})
              for axes in ("LAS", "stored")}
    scan = head(np.random.default_rng(3)).astype(np.float32)
    ras = nib.Nifti1Image(scan, np.diag([2.0, 2.0, 2.0, 1.0]))

    def turned(img, axes):
        return img.as_reoriented(nib.orientations.ornt_transform(nib.orientations.io_orientation(img.affine),
                                                                 nib.orientations.axcodes2ornt(tuple(axes))))

    nib.save(turned(ras, stored_as), tmp_path / "in.nii.gz")
    las = turned(ras, "LAS")
    lr = np.asanyarray(las.dataobj)
    with torch.inference_mode():
        direct = load_generator(models["LAS"], "cpu")[0](
            torch.from_numpy((lr - lr.mean()) / lr.std())[None, None])[0, 0].numpy()
    for axes, model in models.items():
        assert main(["super-resolve", "--model", str(model), str(tmp_path / "in.nii.gz"),
                     str(tmp_path / f"{axes}_sr.nii.gz")]) == 0
        assert nib.aff2axcodes(nib.load(tmp_path / f"{axes}_sr.nii.gz").affine) == tuple(stored_as)
    seen = turned(nib.load(tmp_path / "LAS_sr.nii.gz"), "LAS")
    np.testing.assert_allclose(np.asanyarray(seen.dataobj), direct * lr.std() + lr.mean(), rtol=1e-4,
                               atol=1e-3 * np.ptp(scan))
    np.testing.assert_allclose(seen.affine[:3, :3], np.diag([-1.0, 1.0, 1.0]))  # 1 mm, LAS
    np.testing.assert_allclose(seen.affine[:3, 3], las.affine[:3, 3])  # HR voxel 0 at LR voxel 0
    stored = nib.load(tmp_path / "stored_sr.nii.gz")
    arr = np.asanyarray(nib.load(tmp_path / "in.nii.gz").dataobj)
    with torch.inference_mode():
        as_is = load_generator(models["stored"], "cpu")[0](
            torch.from_numpy((arr - arr.mean()) / arr.std())[None, None])[0, 0].numpy()
    np.testing.assert_allclose(np.asanyarray(stored.dataobj), as_is * arr.std() + arr.mean(), rtol=1e-4,
                               atol=1e-3 * np.ptp(scan))


def test_folder_of_scans_loads_the_model_once_and_writes_one_output_each(tmp_path, rng, monkeypatch):
    from mrisr import super_resolve as stage
    from mrisr.cli import main

    model = write_model(tmp_path / "model.safetensors", {"name": "rrdb", "channels": 4, "growth": 4, "blocks": 1, "scale": 2})
    (tmp_path / "scans").mkdir()
    for name in ("a.nii.gz", "b.nii"):
        nib.save(nib.Nifti1Image(head(rng), np.diag([2.0, 2.0, 2.0, 1.0])), tmp_path / "scans" / name)
    loads = []
    load = stage.load_generator
    monkeypatch.setattr(stage, "load_generator", lambda *a: loads.append(a) or load(*a))  # as the stage imported it
    assert main(["super-resolve", "--model", str(model), str(tmp_path / "scans"), str(tmp_path / "out")]) == 0
    assert len(loads) == 1 and sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.nii.gz", "b.nii"]
    out = nib.load(tmp_path / "out" / "a.nii.gz")
    assert out.shape == (40, 44, 36) and out.header["descrip"].item() == b"mrisr x2 tiny (model.safetensors)"
    assert main(["super-resolve", "--model", str(model), str(tmp_path / "scans"), str(tmp_path / "x.nii.gz")]) == 2


def test_a_scan_at_another_voxel_size_is_warned_with_the_fix(tmp_path, rng, caplog):
    from mrisr.cli import main

    model = write_model(tmp_path / "model.safetensors", {"name": "rrdb", "channels": 4, "growth": 4, "blocks": 1, "scale": 2},
                        hr_voxel_mm=0.7)
    nib.save(nib.Nifti1Image(head(rng), np.eye(4)), tmp_path / "in.nii.gz")
    assert main(["super-resolve", "--model", str(model), str(tmp_path / "in.nii.gz"), str(tmp_path / "sr.nii.gz")]) == 0
    assert "LR voxels of 1.4 mm" in caplog.text and "--resample 1.4" in caplog.text


def test_brain_mask_sets_the_z_score_of_a_brain_normalised_model(tmp_path, rng, monkeypatch):
    """normalise: brain: the statistics are the mask's, whatever lies outside it."""
    from mrisr import super_resolve as stage

    g = build("generator", {"name": "rrdb", "channels": 4, "growth": 4, "blocks": 1, "scale": 2}).eval()
    card = {"scale": 2, "lr_voxel_mm": 2.0, "hr_voxel_mm": 1.0,
            "preprocessing": {"orientation": "RAS", "crop": "none", "margin": 0, "normalise": "brain"}}
    scan = head(rng).astype(np.float32)
    mask = np.zeros(scan.shape, np.uint8)
    mask[6:14, 6:16, 5:12] = 1
    seen = []
    monkeypatch.setattr(stage, "super_resolve", lambda generator, lr, *a, **k: seen.append(lr) or interpolate(lr, 2))
    stage.super_resolve_image(nib.Nifti1Image(scan, np.diag([2.0, 2.0, 2.0, 1.0])),
                              stage.Method(scale=2, grid=LrGrid.CORNER, generator=g, card=card), tmp_path, prepared=False,
                              mask=nib.Nifti1Image(mask, np.diag([2.0, 2.0, 2.0, 1.0])),
                              inference=inference_settings(tile=8, halo=2, reconstruct_tile=8), progress=False)
    inside = mask > 0
    np.testing.assert_allclose(seen[0], (scan - scan[inside].mean()) / scan[inside].std(), rtol=1e-5, atol=1e-5)


def test_a_unit_range_card_scales_the_scan_to_its_range_and_back(tmp_path, rng, monkeypatch):
    """intensities: unit_range (MTVNet's): the network sees (x - min) / (max - min) of the scan, and its output is
    put back into the scan's units."""
    from mrisr import super_resolve as stage

    g = build("generator", {"name": "rrdb", "channels": 4, "growth": 4, "blocks": 1, "scale": 2}).eval()
    card = {"scale": 2, "lr_voxel_mm": 2.0, "hr_voxel_mm": 1.0,
            "preprocessing": {"orientation": "RAS", "crop": "none", "margin": 0, "normalise": "volume",
                              "intensities": "unit_range"}}
    scan = (head(rng).astype(np.float32) * 300 + 50)
    seen = []
    monkeypatch.setattr(stage, "super_resolve", lambda generator, lr, *a, **k: seen.append(lr) or interpolate(lr, 2))
    out = stage.super_resolve_image(nib.Nifti1Image(scan, np.diag([2.0, 2.0, 2.0, 1.0])),
                                    stage.Method(scale=2, grid=LrGrid.SLAB, generator=g, card=card), tmp_path,
                                    prepared=False, mask=None, inference=inference_settings(), progress=False)
    low, span = scan.min(), scan.max() - scan.min()
    np.testing.assert_allclose(seen[0], (scan - low) / span, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asanyarray(out.dataobj), interpolate(seen[0], 2) * span + low, rtol=1e-5, atol=1e-3)


def test_the_workflow_infers_at_the_runs_precision():
    from mrisr import config
    from mrisr.plan.stages import SuperResolve
    from mrisr.plan.study import Study
    from tests.conftest import SCHEMA

    def precision(**values):
        cfg = config.validate({"datasets": {"demo": {"source": "demo"}}, "variants": {"t": {"kind": "interpolation"}},
                               "segmentation": {"enabled": False}, **values}, SCHEMA)
        return SuperResolve(Study(cfg, {})).inference(pasted=False)["precision"]

    assert precision() == "auto" and precision(train={"precision": "fp32"}) == "fp32"
    assert precision(train={"precision": "fp32"}, inference={"precision": "bf16"}) == "bf16"


@pytest.mark.parametrize("train, inference", [({}, {}), ({"tf32": "none", "cudnn_benchmark": True},
                                                         {"compile": "max-autotune"})])
def test_the_workflow_infers_with_the_configs_speed_switches(train, inference):
    """The rule's options, read back by the command line's parser, are the config's values."""
    from mrisr import config
    from mrisr.cli import parser
    from mrisr.plan.stages import SuperResolve
    from mrisr.plan.study import Study
    from tests.conftest import SCHEMA

    from tests.test_plan import files

    cfg = config.validate({"datasets": {"demo": {"source": "demo"}}, "variants": {"t": {"kind": "interpolation"}},
                           "segmentation": {"enabled": False}, "train": train, "inference": inference}, SCHEMA)
    job = SimpleNamespace(variant="t", degradation="nearest")
    options = SuperResolve(Study(cfg, {})).options(job, files(lr="in.nii.gz", reference="r.nii.gz"), ["out.nii.gz"])
    args = vars(parser().parse_args(["super-resolve", *shlex.split(options)]))
    assert (args["acceleration.compile"], args["acceleration.tf32"], args["acceleration.cudnn_benchmark"]) == (
        cfg["inference"]["compile"], cfg["train"]["tf32"], cfg["train"]["cudnn_benchmark"])


@pytest.mark.parametrize("scale, voxels, orientation, degradation", [
    ([1, 1, 4], (1.0, 1.0, 4.0), "RAS", "slice_profile"), ([1, 1, 4], (1.0, 1.0, 4.0), "LPS", "slice_profile"),
    ([1, 1, 4], (1.0, 1.0, 4.0), "IPR", "slice_profile"), ([1, 1, 4], (1.0, 1.0, 4.0), "ASL", "nearest"),
    (4, (4.0, 4.0, 4.0), "RAS", "blur"), (4, (4.0, 4.0, 4.0), "LPS", "nearest")])
def test_a_card_of_any_scale_applies_to_a_raw_scan_of_its_voxels(tmp_path, scale, voxels, orientation, degradation):
    """A thick-slice card (1 x 1 x 4 mm axial slices, stored in any orientation, its thick axis first too) and an x4
    card, through the command line: not refused, output in the scan's orientation, holding the network's output on
    the card's z-score of the scan, on the thin grid of the card's LR grid: a slab card's thin voxels tile each
    scan voxel's slab (the scan's field of view, the same world positions whatever the storage); a decimation
    card's (recorded corner) put thin voxel 0 on the scan's voxel 0."""
    from mrisr.cli import main

    model = write_model(tmp_path / "model.safetensors", {"name": "rrdb", "channels": 4, "growth": 4, "blocks": 1,
                                                         "scale": scale}, degradation={"method": degradation})
    factors = np.array(as_scale(scale))
    scan = (head(np.random.default_rng(5))[:, :, ::4] * 1.0).astype(np.float32)
    ras_affine = np.diag([*voxels, 1.0])
    ras_affine[:3, 3] = (-40.0, -50.0, -30.0)
    ras = nib.Nifti1Image(scan, ras_affine)
    stored = ras.as_reoriented(nib.orientations.ornt_transform(nib.orientations.axcodes2ornt("RAS"),
                                                               nib.orientations.axcodes2ornt(tuple(orientation))))
    nib.save(stored, tmp_path / "thick.nii.gz")
    assert main(["super-resolve", "--model", str(model), str(tmp_path / "thick.nii.gz"), str(tmp_path / "sr.nii.gz")]) == 0
    out = nib.load(tmp_path / "sr.nii.gz")
    assert nib.aff2axcodes(out.affine) == tuple(orientation)
    got = nib.as_closest_canonical(out)
    expected_affine = np.diag([*(np.array(voxels) / factors), 1.0])
    thin = np.array(voxels) / factors  # the slab grid's thin voxel 0: (f - 1) / 2 thin voxels before the scan's
    expected_affine[:3, 3] = np.array((-40.0, -50.0, -30.0)) - (degradation != "nearest") * thin * (factors - 1) / 2
    np.testing.assert_allclose(got.affine, expected_affine, atol=1e-6)
    assert got.shape == tuple(np.array(scan.shape) * factors)
    z = (scan - scan.mean()) / scan.std()
    with torch.inference_mode():
        direct = load_generator(model, "cpu")[0](torch.from_numpy(z)[None, None])[0, 0].numpy()
    np.testing.assert_allclose(np.asanyarray(got.dataobj), direct * scan.std() + scan.mean(), rtol=1e-4,
                               atol=1e-3 * np.ptp(scan))


def test_a_thick_slice_card_refuses_a_scan_whose_slices_lie_along_another_axis(tmp_path, capsys):
    from mrisr.cli import main

    model = write_model(tmp_path / "model.safetensors", {"name": "rrdb", "channels": 4, "growth": 4, "blocks": 1,
                                                "scale": [1, 1, 4]})
    for name, voxels in (("iso.nii.gz", (1.0, 1.0, 1.0)), ("sagittal.nii.gz", (4.0, 1.0, 1.0))):
        nib.save(nib.Nifti1Image(head(np.random.default_rng(1)), np.diag([*voxels, 1.0])), tmp_path / name)
        assert main(["super-resolve", "--model", str(model), str(tmp_path / name), str(tmp_path / "sr.nii.gz")]) == 2
        err = capsys.readouterr().err
        assert f"{tmp_path / name}: voxels of {' x '.join(f'{v:g}' for v in voxels)} mm (RAS+ axes)" in err
        assert "ratio 1 : 1 : 4" in err and not (tmp_path / "sr.nii.gz").exists()
    nib.save(nib.Nifti1Image(head(np.random.default_rng(1)), np.diag([1.0, 1.0, 4.0, 1.0])), tmp_path / "t.nii.gz")
    assert main(["super-resolve", "--model", str(model), "--resample", "1", str(tmp_path / "t.nii.gz"),
                 str(tmp_path / "sr.nii.gz")]) == 2
    assert "--resample makes isotropic voxels" in capsys.readouterr().err


@pytest.mark.parametrize("shift_voxels, axes", [(0.0, "RAS"), (1.5, "RAS"), (0.0, "LPS")])
def test_reference_must_be_the_sr_grid_not_only_its_shape(tmp_path, rng, capsys, shift_voxels, axes):
    """A reference of the SR grid's shape whose first voxel lies 1.5 voxels off, or the right grid stored in another
    orientation (another affine for the same world grid: its header would mislabel the voxels), is refused with
    the fix before anything is written; the grid itself is taken, its header copied."""
    from mrisr.cli import main
    from mrisr.grid import LrGrid, lr_affine

    hr_affine_ = np.diag([1.0, 1.0, 1.0, 1.0])
    hr_affine_[:3, 3] = (-20.0, -22.0, -18.0)
    lr = tmp_path / "lr.nii.gz"
    nib.save(nib.Nifti1Image(head(rng, (10, 11, 9)).astype(np.float32), lr_affine(hr_affine_, 2, LrGrid.SLAB)), lr)
    reference_affine = hr_affine_.copy()
    reference_affine[:3, 3] += shift_voxels
    reference = nib.Nifti1Image(head(rng, (20, 22, 18)).astype(np.float32), reference_affine)
    if axes == "LPS":
        reference = reference.as_reoriented(nib.orientations.axcodes2ornt(("L", "P", "S")))
    nib.save(reference, tmp_path / "ref.nii.gz")
    out = tmp_path / "sr.nii.gz"
    code = main(["super-resolve", "--interpolate", "trilinear", "--scale", "2", str(lr), str(out), "--reference",
                 str(tmp_path / "ref.nii.gz")])
    if shift_voxels == 0 and axes == "RAS":
        assert code == 0 and np.allclose(nib.load(out).affine, hr_affine_)
        return
    err = capsys.readouterr().err
    assert code == 2 and "ref.nii.gz: reference grid" in err and "is not the SR grid" in err and "Fix: give" in err
    assert ("first voxel 2.6 mm from the SR grid's" in err) == (shift_voxels == 1.5) and not out.exists()


def test_several_scans_take_one_reference_each_in_their_order(tmp_path, rng, capsys):
    """What a workflow job does with a subject set: each scan's output onto its own reference's grid and header
    (the references differ in origin), each equal to that scan run alone; a count that does not match is refused
    before anything is written."""
    from mrisr.cli import main
    from mrisr.grid import LrGrid, lr_affine

    scans, references, alone = [], [], []
    for i, origin in enumerate([(-20.0, -22.0, -18.0), (5.0, 3.0, -40.0)]):
        hr = np.diag([1.0, 1.0, 1.0, 1.0])
        hr[:3, 3] = origin
        scans.append(tmp_path / "lr" / f"sub-0{i}_T1w.nii.gz")
        scans[-1].parent.mkdir(exist_ok=True)
        nib.save(nib.Nifti1Image(head(rng, (10, 11, 9)).astype(np.float32), lr_affine(hr, 2, LrGrid.SLAB)), scans[-1])
        references.append(tmp_path / f"ref{i}.nii.gz")
        nib.save(nib.Nifti1Image(head(rng, (20, 22, 18)).astype(np.float32), hr), references[-1])
        alone.append(tmp_path / f"alone{i}.nii.gz")
        assert main(["super-resolve", "--interpolate", "trilinear", "--scale", "2", str(scans[-1]), str(alone[-1]),
                     "--reference", str(references[-1])]) == 0
    out = tmp_path / "sr"
    assert main(["super-resolve", "--interpolate", "trilinear", "--scale", "2", *map(str, scans), str(out),
                 "--reference", *map(str, references)]) == 0
    for scan, reference, single in zip(scans, references, alone):
        written = nib.load(out / scan.name)
        np.testing.assert_array_equal(written.affine, nib.load(reference).affine)
        np.testing.assert_array_equal(np.asanyarray(written.dataobj), np.asanyarray(nib.load(single).dataobj))
    assert main(["super-resolve", "--interpolate", "trilinear", "--scale", "2", *map(str, scans),
                 str(tmp_path / "other"), "--reference", str(references[0])]) == 2
    assert "--reference takes one file per scan, in the scans' order: 2 scans, 1 given" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()
