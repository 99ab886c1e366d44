import pytest
import torch

from mrisr.models.registry import build
from mrisr.scale import as_config, as_option, as_scale, label, stages, whole_lr_voxels


def test_one_factor_is_every_axis_and_three_are_per_axis():
    assert as_scale(2) == (2, 2, 2) and as_scale([1, 1, 4]) == (1, 1, 4)
    assert as_config((2, 2, 2)) == 2 and as_config((1, 1, 4)) == [1, 1, 4]
    assert label(2) == "x2" and label([1, 1, 4]) == "x1x1x4" and label([4, 4, 4]) == "x4"
    assert as_option(4) == "4" and as_option([1, 1, 4]) == "1,1,4"
    for bad in (0, 5, [2, 2], [1, 1, 8], "2", [2.0, 2, 2]):
        with pytest.raises(ValueError, match="a scale is"):
            as_scale(bad)


def test_stages_are_esrgans_x2_steps_per_axis():
    """x4 is two x2 stages, x3 one stage; an axis of factor 1 takes none; axes of fewer stages idle at 1."""
    assert stages(2) == [(2, 2, 2)]
    assert stages(4) == [(2, 2, 2), (2, 2, 2)]
    assert stages([1, 1, 4]) == [(1, 1, 2), (1, 1, 2)]
    assert stages([2, 2, 4]) == [(2, 2, 2), (1, 1, 2)]
    assert stages([3, 3, 1]) == [(3, 3, 1)]
    assert stages(1) == []


GENERATORS = {"rrdb": {"name": "rrdb", "channels": 4, "growth": 4, "blocks": 1},
              "mdcsrn": {"name": "mdcsrn", "growth": 2, "blocks": 1, "units": 1},
              "mdcsrn_sub_pixel": {"name": "mdcsrn", "growth": 2, "blocks": 1, "units": 1, "batch_norm": True,
                                   "reconstruction": "sub_pixel"}}


@pytest.mark.parametrize("name", list(GENERATORS))
@pytest.mark.parametrize("scale", [1, 2, 4, [1, 1, 4], [3, 3, 1], [2, 2, 4]])
def test_every_generator_upsamples_each_axis_by_its_factor(name, scale):
    g = build("generator", {**GENERATORS[name], "scale": scale})
    x = torch.randn(1, 1, 5, 6, 7)
    assert g(x).shape[2:] == tuple(n * f for n, f in zip(x.shape[2:], as_scale(scale)))


def test_the_x2_generator_keeps_its_layout():
    """Scale 2 builds the modules it always had (one conv to 8·C, a x2 shuffle): the authors' weights still load."""
    g = build("generator", {"name": "rrdb", "channels": 8, "growth": 4, "blocks": 1, "scale": 2})
    shapes = {k: tuple(v.shape) for k, v in g.state_dict().items() if k.startswith("upsample")}
    assert shapes == {"upsample.0.weight": (64, 8, 3, 3, 3), "upsample.0.bias": (64,)}


def test_an_sr_grid_may_miss_only_the_far_rows_that_fill_no_lr_voxel():
    assert whole_lr_voxels((10, 11, 12), (8, 8, 12), (4, 4, 4))
    assert not whole_lr_voxels((10, 11, 12), (8, 8, 8), (4, 4, 4))
    assert not whole_lr_voxels((10, 11, 12), (12, 12, 12), (4, 4, 4))
