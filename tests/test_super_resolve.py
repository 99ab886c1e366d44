import numpy as np
import torch
from tqdm import tqdm

from mrisr.degrade import lr_affine
from mrisr.models.registry import build
from mrisr.super_resolve import hr_affine, interpolate, load_generator, super_resolve


def test_trilinear_reproduces_a_linear_ramp_on_the_hr_grid():
    i, j, k = np.meshgrid(np.arange(6), np.arange(5), np.arange(4), indexing="ij")
    lr = (2 * i + 3 * j - k).astype(np.float32)  # value at LR voxel i lying at HR voxel 2i
    hr = interpolate(lr, 2)
    I, J, K = np.meshgrid(np.arange(12), np.arange(10), np.arange(8), indexing="ij")
    inside = (I <= 10) & (J <= 8) & (K <= 6)  # the last HR voxel lies past the last LR sample: clamped
    np.testing.assert_allclose(hr[inside], ((2 * I + 3 * J - K) / 2)[inside], atol=1e-5)


def test_tiles_with_wide_halo_equal_one_pass(rng):
    torch.manual_seed(0)
    g = build("generator", {"name": "rrdb", "channels": 8, "growth": 4, "blocks": 1}).eval()
    lr = rng.normal(size=(14, 11, 9)).astype(np.float32)
    with torch.inference_mode():
        one_pass = g(torch.from_numpy(lr)[None, None])[0, 0].numpy()
    # receptive field: 1 + 17 convs of k3 on the LR grid -> 17 voxels; halo 18 covers it
    tiled = super_resolve(g, lr, 2, tile=5, halo=18, progress=False)
    np.testing.assert_allclose(tiled, one_pass, atol=1e-5)
    small_halo = super_resolve(g, lr, 2, tile=5, halo=1, progress=False)
    assert np.abs(small_halo - one_pass).max() > 1e-4


def test_model_bundle_round_trip(tmp_path):
    g = build("generator", {"name": "rrdb", "channels": 4, "growth": 4, "blocks": 1, "scale": 2})
    torch.save({"generator": {"name": "rrdb", "channels": 4, "growth": 4, "blocks": 1, "scale": 2},
                "state_dict": g.state_dict()}, tmp_path / "model.pt")
    loaded, scale = load_generator(tmp_path / "model.pt")
    assert scale == 2
    x = torch.randn(1, 1, 4, 4, 4)
    torch.testing.assert_close(loaded(x), g(x))


def test_hr_affine_inverts_lr_affine():
    a = np.array([[1.0, 0.1, 0, 3], [0, 1.2, 0, -4], [0, 0, 0.9, 5], [0, 0, 0, 1]])
    np.testing.assert_allclose(hr_affine(lr_affine(a, 2), 2), a)


def test_damaged_model_file_is_named(tmp_path):
    import pytest

    from mrisr.errors import InputError

    (tmp_path / "model.pt").write_bytes(b"\x00not a model")
    with pytest.raises(InputError, match="model.pt"):
        load_generator(tmp_path / "model.pt")


def test_windows_cover_each_voxel_once_with_a_halo_or_the_volume_edge():
    from mrisr.super_resolve import windows

    for size, tile, halo in [(64, 48, 8), (80, 48, 8), (20, 16, 2), (64, 16, 2), (9, 4, 0), (30, 7, 3), (10, 48, 8)]:
        plan = windows(size, tile, halo)
        covered = np.zeros(size, int)
        for start, stop, first, last in plan:
            covered[start:stop] += 1
            assert stop - start <= tile
            assert start - first >= halo or first == 0
            assert last - stop >= halo or last == size
        assert (covered == 1).all(), (size, tile, halo)
        assert len({last - first for _, _, first, last in plan}) == 1  # windows stack into batches
    # the authors' pasted tiles keep their exact period, for the stripe figure
    assert [start for start, *_ in windows(50, 16, 0, even=False)] == [0, 16, 32, 48]


def _paper_generator():
    torch.manual_seed(0)
    return build("generator", {"name": "rrdb", "channels": 64, "growth": 64, "blocks": 3, "scale": 2}).eval()


def test_reconstruction_reach_is_exact():
    from mrisr.super_resolve import _windowed

    g = _rrdb()
    features = torch.randn(1, 8, 12, 10, 9)
    with torch.inference_mode():
        whole = g.reconstruct(features)[0]
        bar = tqdm(disable=True)
        cpu = torch.device("cpu")
        exact = _windowed(g.reconstruct, cpu, features[0], 2, 3, g.reconstruct_reach, 1, bar)
        short = _windowed(g.reconstruct, cpu, features[0], 2, 3, g.reconstruct_reach - 1, 1, bar)
    torch.testing.assert_close(exact, whole, atol=1e-5, rtol=0)
    assert (short - whole).abs().max() > 1e-4


def _rrdb():
    torch.manual_seed(0)
    return build("generator", {"name": "rrdb", "channels": 8, "growth": 4, "blocks": 1}).eval()


def test_in_place_dense_blocks_and_batches_give_the_training_graph_s_values(rng):
    g = _rrdb()
    x = torch.from_numpy(rng.normal(size=(1, 1, 10, 9, 8)).astype(np.float32))
    with torch.no_grad():
        inference = g(x)
    with torch.enable_grad():
        graph = g(x)  # the concatenating path that training differentiates
    torch.testing.assert_close(inference, graph, atol=1e-6, rtol=0)
    lr = x[0, 0].numpy()
    one = super_resolve(g, lr, 2, tile=4, halo=3, batch=1, progress=False)
    four = super_resolve(g, lr, 2, tile=4, halo=3, batch=4, progress=False)
    np.testing.assert_allclose(four, one, atol=1e-5)


def test_paper_generator_windowed_with_the_default_halo_is_the_one_pass_answer(rng):
    """The authors' generator (random weights) on unit-variance input: windows along x, the workflow's halo."""
    import yaml

    from tests.conftest import SCHEMA

    halo = yaml.safe_load(SCHEMA.read_text())["properties"]["inference"]["properties"]["halo"]["default"]
    g = _paper_generator()
    lr = rng.normal(size=(44, 12, 12)).astype(np.float32)
    with torch.inference_mode():
        one_pass = g(torch.from_numpy(lr)[None, None])[0, 0].numpy()
    windowed = super_resolve(g, lr, 2, tile=12, halo=halo, progress=False)
    assert np.abs(windowed - one_pass).max() <= 1e-3
