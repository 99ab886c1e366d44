import itertools

import numpy as np
import pytest
import pywt
import torch

from mrisr.models.wavelets import haar_dwt3, haar_idwt3

KEYS = ["".join(k) for k in itertools.product("ad", repeat=3)]  # pywt's sub-band names, axis 0 first


@pytest.mark.parametrize("shape", [(1, 1, 2, 2, 2), (2, 3, 6, 8, 10), (1, 2, 16, 4, 12)])
def test_dwt_matches_pywt_dwtn_band_by_band(shape, rng):
    x = rng.normal(size=shape)
    y = haar_dwt3(torch.from_numpy(x)).numpy()
    c = shape[1]
    for b, ch in itertools.product(range(shape[0]), range(c)):
        reference = pywt.dwtn(x[b, ch], "haar")
        for k, key in enumerate(KEYS):
            np.testing.assert_allclose(y[b, k * c + ch], reference[key], atol=1e-6)


def test_inverse_restores_input_and_matches_pywt_idwtn(rng):
    x = rng.normal(size=(2, 2, 4, 6, 8))
    y = haar_dwt3(torch.from_numpy(x))
    np.testing.assert_allclose(haar_idwt3(y).numpy(), x, atol=1e-6)
    bands = {key: y[0, k * 2].numpy() for k, key in enumerate(KEYS)}
    np.testing.assert_allclose(pywt.idwtn(bands, "haar"), x[0, 0], atol=1e-6)


def test_dwt_is_differentiable_and_odd_sizes_are_refused():
    x = torch.randn(1, 1, 4, 4, 4, requires_grad=True)
    haar_dwt3(x)[:, 0].sum().backward()
    # the low band is (sum of 8 voxels)/2^(3/2): each voxel's gradient is 2^(-3/2)
    torch.testing.assert_close(x.grad, torch.full_like(x, 2 ** -1.5))
    with pytest.raises(ValueError, match="even"):
        haar_dwt3(torch.zeros(1, 1, 3, 4, 4))
