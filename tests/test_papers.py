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


def test_every_method_keeps_one_colour_and_spares_are_stable():
    assert len(set(style.METHOD_COLOURS.values())) == len(style.METHOD_COLOURS)
    assert style.colour("my_new_variant") == style.colour("my_new_variant")


def test_figures_write_png_and_pdf(tmp_path):
    steps = np.arange(1, 61)
    log = pd.DataFrame({"step": steps, "g_real_minus_fake": np.exp(-steps / 20), "d_real_minus_fake": np.exp(-steps / 15)})
    log.loc[:4, ["g_real_minus_fake", "d_real_minus_fake"]] = np.nan  # warm-up
    written = threeplayer.discrepancy({"threeplayer": log, "threeplayer_no_noise": log * 1.1}, tmp_path / "d.png")
    assert [p.suffix for p in written] == [".png", ".pdf"] and all(p.stat().st_size > 1000 for p in written)
    mask = np.zeros((40, 40, 40), bool)
    mask[8:32, 8:32, 8:32] = True
    gt = np.random.default_rng(0).normal(size=mask.shape).astype(np.float32)
    z, y, xs = threeplayer.line_profile_position(mask, 0.3, 20)
    assert xs.stop - xs.start == 20 and mask[xs, y, z].all()
    threeplayer.zoom_profile({"GT": gt, "trilinear": gt * 0.9}, mask, tmp_path / "p.png", 0.3, 20)
    width, height = Image.open(tmp_path / "p.png").size
    assert width > 300 and height > 300
    disgan.stripes(gt, gt + 0.01, gt + 0.1, mask, 16, tmp_path / "s.png", "disgan")
    table = pd.DataFrame([{"method": m, "metric": k, "sigma": s, "mean": v + s, "std": 0.1}
                          for m in ("trilinear", "disgan") for s in (0, 0.1)
                          for k, v in {"psnr": 30, "ssim": 0.9, "sigma_sr": 0.05, "sigma_lr": 0.1}.items()])
    disgan.noise_curves(table, tmp_path / "n.png")
    assert (tmp_path / "n.pdf").stat().st_size > 1000
