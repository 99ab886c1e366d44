import os
import subprocess
import sys

import numpy as np
import pytest
import pandas as pd
from PIL import Image

from mrisr.papers import disgan, style, threeplayer


def test_error_spectrum_peaks_at_the_tile_period():
    rng = np.random.default_rng(0)
    error = 0.05 * rng.normal(size=(64, 20, 20))
    error[::16] += 1.0  # a seam every 16 voxels along x
    mask = np.ones(error.shape, bool)
    freq, power = disgan.error_spectrum(error, mask, axis=0)
    peak = int(np.argmin(np.abs(freq - 1 / 16)))
    assert power[peak] > 20 * np.median(power[1:])
    freq, power = disgan.error_spectrum(0.05 * rng.normal(size=(64, 20, 20)), mask, axis=0)
    assert power[peak] < 3 * np.median(power[1:])


def _pixels_of(png, colour: str, tolerance: int = 6) -> int:
    """How many pixels of ``png`` have ``colour`` (#rrggbb), each channel within ``tolerance``."""
    rgb = np.asarray(Image.open(png).convert("RGB"), dtype=int)
    target = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(rgb - target) <= tolerance).all(axis=-1).sum())


def test_every_method_keeps_one_colour_and_a_new_variant_a_stable_spare():
    assert len(set(style.METHOD_COLOURS.values())) == len(style.METHOD_COLOURS)
    assert style.colour("esrgan") == style.METHOD_COLOURS["esrgan"]
    spare = style.colour("my_new_variant")
    assert spare not in style.METHOD_COLOURS.values()
    # the same name gets the same spare in another process, whatever its hash seed (figures of separate jobs agree)
    code = "from mrisr.papers import style; print(style.colour('my_new_variant'))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": "12345"}).stdout.strip()
    assert other == spare


def test_figures_draw_each_method_in_its_colour_and_no_other(tmp_path):
    steps = np.arange(1, 61)
    log = pd.DataFrame({"step": steps, "d_real_minus_fake": np.exp(-steps / 15),
                        "loss_adversarial": np.log(2) + np.exp(-steps / 10), "loss_d": np.log(2) - np.exp(-steps / 12)})
    log.loc[:4, ["d_real_minus_fake", "loss_adversarial", "loss_d"]] = np.nan  # warm-up
    written = threeplayer.discrepancy({"threeplayer": log, "threeplayer_no_noise": log * 1.1}, tmp_path / "d.png")
    assert [p.suffix for p in written] == [".png", ".pdf"] and written[1].read_bytes().startswith(b"%PDF")
    colours = style.METHOD_COLOURS
    assert _pixels_of(written[0], colours["threeplayer"]) > 200
    assert _pixels_of(written[0], colours["threeplayer_no_noise"]) > 200
    assert _pixels_of(written[0], colours["esrgan"]) == 0

    mask = np.zeros((40, 40, 40), bool)
    mask[8:32, 8:32, 8:32] = True
    gt = np.random.default_rng(0).normal(size=mask.shape).astype(np.float32)
    z, y, xs = threeplayer.line_profile_position(mask, 0.3, 20)
    assert xs.stop - xs.start == 20 and mask[xs, y, z].all()
    threeplayer.zoom_profile({"GT": gt, "trilinear": gt * 0.9}, mask, tmp_path / "p.png", 0.3, 20)
    width, height = Image.open(tmp_path / "p.png").size
    assert width > 300 and height > 300
    assert _pixels_of(tmp_path / "p.png", colours["trilinear"]) > 50
    assert _pixels_of(tmp_path / "p.png", colours["disgan"]) == 0

    table = pd.DataFrame([{"method": m, "metric": k, "sigma": s, "mean": v + s, "std": 0.1}
                          for m in ("trilinear", "disgan") for s in (0, 0.1)
                          for k, v in {"psnr": 30, "ssim": 0.9, "sigma_sr": 0.05, "sigma_lr": 0.1}.items()])
    disgan.noise_curves(table, tmp_path / "n.png")
    assert (tmp_path / "n.pdf").read_bytes().startswith(b"%PDF")
    assert _pixels_of(tmp_path / "n.png", colours["trilinear"]) > 100
    assert _pixels_of(tmp_path / "n.png", colours["disgan"]) > 100
    assert _pixels_of(tmp_path / "n.png", colours["wgan_gp"]) == 0


def test_stripes_figure_shows_the_pasted_error_larger_than_the_blended(tmp_path):
    """Left panels are |SR - GT| in one grey scale: the pasted tiles' seams must come out brighter."""
    mask = np.zeros((40, 40, 40), bool)
    mask[8:32, 8:32, 8:32] = True
    gt = np.random.default_rng(0).normal(size=mask.shape).astype(np.float32)
    pasted = gt.copy()
    pasted[::8] += 1.0  # a seam every 8 voxels along x
    written = disgan.stripes(gt, gt + 0.01, pasted, mask, 8, tmp_path / "s.png", "disgan")
    assert [p.suffix for p in written] == [".png", ".pdf"]
    rgb = np.asarray(Image.open(written[0]).convert("RGB"), dtype=int)
    height, width, _ = rgb.shape
    brightest = (np.abs(rgb - np.array([252, 253, 191])) <= 40).all(axis=-1)[int(0.2 * height):int(0.7 * height)]
    blended_panel, pasted_panel = (brightest[:, int(a * width):int(b * width)] for a, b in ((0.02, 0.24), (0.27, 0.49)))
    assert blended_panel.sum() == 0 and pasted_panel.sum() > 1000  # magma's top: the seams at 1.0, not 0.01
    assert _pixels_of(written[0], "#ff7f0e") > 100 and _pixels_of(written[0], "#9467bd") > 100  # both spectra


def test_method_table_says_which_start_each_generator_had(tmp_path, rng):
    from mrisr.papers.tables import method_table
    from mrisr.captions import start_note

    inputs = []
    for label, start in (("trilinear", ""), ("esrgan", "the pixel-loss generator rrdb-l1-0a1b2c3d (1000 steps)"),
                         ("threeplayer", "the pixel-loss generator rrdb-l1-0a1b2c3d (1000 steps)"),
                         ("wgan_gp", "scratch")):
        path = tmp_path / f"{label}.csv"
        pd.DataFrame({"subject": ["01", "02", "03"], "psnr": rng.normal(30, 1, 3),
                      "ssim": rng.uniform(0.9, 1, 3)}).to_csv(path, index=False)
        inputs.append({"label": label, "path": str(path), "start": start})
    method_table(inputs, "trilinear", str(tmp_path / "t.csv"), str(tmp_path / "t.md"))
    table = pd.read_csv(tmp_path / "t.csv", keep_default_na=False)
    starts = table.groupby("method", sort=False)["start"].unique()
    assert {m: list(s) for m, s in starts.items()} == {m["label"]: [m["start"]] for m in inputs}
    note = ("esrgan, threeplayer from the pixel-loss generator rrdb-l1-0a1b2c3d (1000 steps); wgan_gp from scratch")
    assert start_note({m["label"]: m["start"] for m in inputs}) == note
    assert f"Generators: {note}." in (tmp_path / "t.md").read_text()
    assert start_note({"trilinear": ""}) == ""


def test_before_after_draws_each_scan_at_the_same_height_in_millimetres(tmp_path):
    """A scan stored LPS and its RAS copy give the same axial slice and extent; voxel edges, not centres, bound it."""
    import nibabel as nib

    from mrisr.papers.usage import axial_slice_mm, before_after_figure

    volume = np.zeros((8, 10, 12), np.float32)
    volume[2:4, 3:6, 5] = 1.0
    ras = nib.Nifti1Image(volume, np.array([[2.0, 0, 0, -8], [0, 2, 0, -10], [0, 0, 2, -12], [0, 0, 0, 1]]))
    lps = nib.Nifti1Image(volume[::-1, ::-1].copy(), ras.affine @ np.array(
        [[-1, 0, 0, 7], [0, -1, 0, 9], [0, 0, 1, 0], [0, 0, 0, 1]], float))
    z = float((ras.affine @ [0, 0, 5, 1])[2])
    for image in (ras, lps):
        plane, extent = axial_slice_mm(image, z + 0.4)  # the nearest slice
        np.testing.assert_array_equal(plane, volume[:, :, 5].T)
        np.testing.assert_allclose(extent, [-9, 7, -11, 9])
    hr = tmp_path / "hr.nii.gz"
    nib.save(ras, hr)
    nib.save(lps, tmp_path / "lps.nii.gz")
    written = before_after_figure(str(hr), str(tmp_path / "lps.nii.gz"), str(hr), str(tmp_path / "f.png"), "t")
    assert [p.suffix for p in written] == [".png", ".pdf"]
    with Image.open(written[0]) as png:
        assert png.size[0] > 600


def test_settings_table_pairs_within_each_setting_and_keeps_published_rows_apart(tmp_path, rng):
    """Each setting's variants against trilinear on that setting's subjects (scipy's paired t), the published
    numbers in rows of their own with no statistics, under their setting in the Markdown."""
    from scipy import stats

    from mrisr.papers.field import settings_figure, settings_table

    inputs, values = [], {}
    for setting, offset in (("nearest", 0.0), ("x4_blur", -4.0)):
        for label, gain in (("trilinear", 0.0), ("esrgan", 1.0)):
            frame = pd.DataFrame({"subject": ["01", "02", "03", "04"], "psnr_brain": rng.normal(30 + offset + gain, 1, 4),
                                  "ssim_brain": rng.uniform(0.8, 0.9, 4), "nrmse_brain": rng.uniform(0.1, 0.2, 4)})
            frame.to_csv(tmp_path / f"{setting}_{label}.csv", index=False)
            values[setting, label] = frame
            inputs.append({"label": label, "path": str(tmp_path / f"{setting}_{label}.csv"), "setting": setting,
                           "description": f"{setting} in words"})
    published = [{"method": "RRDBNet3D", "setting": "x4_blur", "dataset": "HCP-1200", "psnr": 34.31, "ssim": 0.9092,
                  "source": "MTVNet (NLDL 2026)"}]
    settings_table(inputs, "trilinear", published, str(tmp_path / "s.csv"), str(tmp_path / "s.md"))
    table = pd.read_csv(tmp_path / "s.csv")
    for setting in ("nearest", "x4_blur"):
        row = table[(table.setting == setting) & (table.method == "esrgan") & (table.metric == "psnr_brain")].iloc[0]
        ours, ref = values[setting, "esrgan"]["psnr_brain"], values[setting, "trilinear"]["psnr_brain"]
        assert row["mean"] == pytest.approx(ours.mean()) and row["mean_diff"] == pytest.approx((ours - ref).mean())
        assert row["t"] == pytest.approx(stats.ttest_rel(ours, ref).statistic)
        assert row["description"] == f"{setting} in words"
    printed = table[table.method == "RRDBNet3D (published)"]
    assert sorted(zip(printed.metric, printed["mean"])) == [("psnr_brain", 34.31), ("ssim_brain", 0.9092)]
    assert printed[["n", "reference", "t"]].isna().all().all() and set(printed.setting) == {"x4_blur"}
    text = (tmp_path / "s.md").read_text()
    assert text.index("### x4_blur: x4_blur in words") < text.index("| RRDBNet3D (published) | HCP-1200 | psnr_brain |")
    assert text.count("(published)") == 2
    assert [p.suffix for p in settings_figure(str(tmp_path / "s.csv"), str(tmp_path / "s.png"))] == [".png", ".pdf"]


def test_the_anatomy_table_pairs_each_method_against_the_reference_per_segmenter_and_class(tmp_path):
    """Two methods' per-subject volume files and an outside method not computed: the means are the files' means,
    the paired difference is method - reference over the subjects both have, and the missing method says why."""
    from mrisr.papers.anatomy import anatomy_table

    def volumes(name: str, error: list[float], dice: list[float]) -> dict:
        frame = pd.DataFrame({"subject": ["01", "02", "03"]})
        for segmenter in ("network", "atropos"):
            for tissue in ("CSF", "GM", "WM"):
                frame[f"{segmenter}_{tissue}_error_pct"] = error
                frame[f"{segmenter}_{tissue}_abs_error_pct"] = np.abs(error)
                frame[f"{segmenter}_{tissue}_dice"] = dice
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
        return {"label": name, "path": str(tmp_path / f"{name}.csv"), "setting": "x4_blur", "description": "x4 blur"}

    pd.DataFrame({"subject": ["01", "02", "03"], "note": "not computed: no environment"}).to_csv(
        tmp_path / "eclare.csv", index=False)
    inputs = [volumes("trilinear", [-4.0, -2.0, -3.0], [0.8, 0.82, 0.81]), volumes("esrgan", [1.0, -1.0, 3.0],
                                                                                   [0.9, 0.91, 0.92]),
              {"label": "ECLARE", "path": str(tmp_path / "eclare.csv"), "setting": "x4_blur", "description": "x4 blur"}]
    anatomy_table(inputs, "trilinear", str(tmp_path / "t.csv"), str(tmp_path / "t.md"))
    table = pd.read_csv(tmp_path / "t.csv")
    row = table.query("method == 'esrgan' and metric == 'atropos_GM_error_pct'").iloc[0]
    assert row["mean"] == pytest.approx(1.0) and row["mean_diff"] == pytest.approx(4.0) and row["n_pairs"] == 3
    dice = table.query("method == 'esrgan' and metric == 'network_WM_dice'").iloc[0]
    assert dice["mean_diff"] == pytest.approx(0.1) and set(table["segmenter"]) == {"network", "atropos"}
    text = (tmp_path / "t.md").read_text()
    assert "#### Segmented by atropos" in text and "GM volume error (%)" in text and "ECLARE not computed" in text
