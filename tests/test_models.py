import pytest
import torch

from mrisr.errors import ConfigError
from mrisr.models.pixel_shuffle import pixel_shuffle_3d, pixel_unshuffle_3d
from mrisr.models.registry import build, count_parameters


def _rrdb_parameters(c: int, g: int, blocks: int, scale_stages: int = 1) -> int:
    """Closed form from the architecture: 3×3×3 convs with bias."""
    conv = lambda cin, cout: 27 * cin * cout + cout  # noqa: E731
    dense = sum(conv(c + i * g, g) for i in range(4)) + conv(c + 4 * g, c)
    return (conv(1, c) + blocks * 3 * dense + conv(c, c) + scale_stages * conv(c, 8 * c) + conv(c, c) + conv(c, 1))


@pytest.mark.parametrize("c,g,blocks", [(64, 64, 3), (16, 8, 2), (8, 4, 1)])
def test_generator_parameter_count_matches_formula(c, g, blocks):
    model = build("generator", {"name": "rrdb", "channels": c, "growth": g, "blocks": blocks})
    assert count_parameters(model) == _rrdb_parameters(c, g, blocks)


def test_paper_sizes_equal_the_authors_counts():
    assert count_parameters(build("generator", {"name": "rrdb"})) == 16_042_881
    assert count_parameters(build("discriminator", {"name": "patch", "norm": "instance"})) == 14_066_369
    assert count_parameters(build("discriminator", {"name": "patch", "norm": "batch"})) == 14_066_369
    assert count_parameters(build("discriminator", {"name": "patch", "norm": "spectral"})) == 14_062_657
    assert count_parameters(build("feature_extractor", {"name": "resnet10"})) == 14_355_520


def test_pixel_shuffle_places_channels_and_inverts():
    x = torch.arange(8.0).reshape(1, 8, 1, 1, 1)
    y = pixel_shuffle_3d(x, 2)
    assert y.shape == (1, 1, 2, 2, 2)
    assert y[0, 0, 1, 0, 1] == 5  # channel (i·2 + j)·2 + k with (i, j, k) = (1, 0, 1)
    z = torch.randn(2, 16, 3, 4, 5)
    torch.testing.assert_close(pixel_unshuffle_3d(pixel_shuffle_3d(z, 2), 2), z)


def test_shapes_of_the_three_players():
    g = build("generator", {"name": "rrdb", "channels": 8, "growth": 4, "blocks": 1})
    assert g(torch.zeros(1, 1, 6, 8, 10)).shape == (1, 1, 12, 16, 20)
    d = build("discriminator", {"name": "patch", "channels": [4, 8, 8, 8]})
    assert d(torch.zeros(2, 1, 32, 32, 32)).shape == (2, 1, 2, 2, 2)
    fe = build("feature_extractor", {"name": "resnet10", "channels": 4})
    assert fe(torch.zeros(1, 1, 32, 32, 32)).shape == (1, 32, 4, 4, 4)


def test_unknown_network_is_a_config_error():
    with pytest.raises(ConfigError, match="generator.name"):
        build("generator", {"name": "unet9000"})
