import numpy as np
import torch

from mrisr.inference import hr_affine, interpolate, load_generator, super_resolve
from mrisr.degrade import lr_affine
from mrisr.models.registry import build


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
