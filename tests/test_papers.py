import os
import subprocess
import sys

import numpy as np
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
