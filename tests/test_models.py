import itertools

import pytest
import torch

from mrisr.errors import ConfigError
from mrisr.models.mdcsrn import SubPixelStage
from mrisr.models.pixel_shuffle import pixel_shuffle_3d, pixel_unshuffle_3d
from mrisr.models.registry import build, count_parameters


def _rrdb_parameters(c: int, g: int, blocks: int, scale_stages: int = 1) -> int:
    """Closed form from the architecture: 3×3×3 convs with bias."""
    conv = lambda cin, cout: 27 * cin * cout + cout  # noqa: E731
    dense = sum(conv(c + i * g, g) for i in range(4)) + conv(c + 4 * g, c)
    return (conv(1, c) + blocks * 3 * dense + conv(c, c) + scale_stages * conv(c, 8 * c) + conv(c, c) + conv(c, 1))


@pytest.mark.parametrize("c,g,blocks", [(64, 64, 3), (16, 8, 2), (8, 4, 1)])
def test_generator_parameter_count_matches_formula(c, g, blocks):
    model = build("generator", {"name": "rrdb", "channels": c, "growth": g, "blocks": blocks, "scale": 2})
    assert count_parameters(model) == _rrdb_parameters(c, g, blocks)


def test_paper_sizes_equal_the_authors_counts():
    assert count_parameters(build("generator", {"name": "rrdb", "scale": 2})) == 16_042_881
    # the WGAN-GP baseline's generator (MRSRGAN): two RRDBs, each ending in BatchNorm3d
    assert count_parameters(build("generator", {"name": "rrdb", "blocks": 2, "batch_norm": True, "scale": 2})) == 11_065_537
    assert count_parameters(build("discriminator", {"name": "patch", "norm": "instance"})) == 14_066_369
    assert count_parameters(build("discriminator", {"name": "patch", "norm": "batch"})) == 14_066_369
    assert count_parameters(build("discriminator", {"name": "patch", "norm": "spectral"})) == 14_062_657
    assert count_parameters(build("feature_extractor", {"name": "resnet10"})) == 14_355_520
    assert count_parameters(build("discriminator", {"name": "wavelet_unet"})) == 42_653_827


def test_mtvnet_rrdbnet3d_sizes_equal_their_module_s_counts():
    """MTVNet's RRDBNet3D (models/RRDBNet3D_official.py @c4ccf80) at their benchmark's 64 channels, 12 RRDBs, growth
    32: their module counts 26,081,761 parameters at x2 and 26,109,441 at x4 (built from their file; with their
    weights copied in, ours gave their outputs exactly). The closed form: their head halves the channels."""
    conv = lambda cin, cout: 27 * cin * cout + cout  # noqa: E731
    dense = sum(conv(64 + i * 32, 32) for i in range(4)) + conv(64 + 4 * 32, 64)
    trunk = conv(1, 64) + 12 * 3 * dense + conv(64, 64)
    for scale, head in ((2, conv(64, 32)), (4, conv(64, 32) + conv(32, 32))):
        model = build("generator", {"name": "rrdb", "channels": 64, "growth": 32, "blocks": 12, "scale": scale,
                                    "upsampler": "nearest_conv", "negative_slope": 0.2})
        assert count_parameters(model) == trunk + head + conv(32, 32) + conv(32, 1)
        assert count_parameters(model) == {2: 26_081_761, 4: 26_109_441}[scale]


def test_kaiming_scaled_init_is_esrgan_s_tenth_of_kaiming_with_zero_biases():
    """MTVNet's RRDBNet3D init (KAIR's init_weights, kaiming_normal, gain 0.1; with the same random state ours drew
    their module's weights to the bit, checked here against their file): every conv's weights have std
    0.1·sqrt(2 / fan_in) (Kaiming's for ReLU, clamping to ±1 cuts nothing at these fans), zero biases."""
    torch.manual_seed(0)
    model = build("generator", {"name": "rrdb", "channels": 16, "growth": 8, "blocks": 2, "scale": 2,
                                "init": "kaiming_scaled"})
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv3d)]
    for conv in convs:
        fan_in = conv.weight[0].numel()
        assert torch.all(conv.bias == 0)
        assert abs(conv.weight.std().item() / (0.1 * (2 / fan_in) ** 0.5) - 1) < 0.15 or conv.weight.numel() < 500
    default = build("generator", {"name": "rrdb", "channels": 16, "growth": 8, "blocks": 2, "scale": 2})
    assert not all(torch.all(m.bias == 0) for m in default.modules() if isinstance(m, torch.nn.Conv3d))


def test_the_nearest_conv_head_upsamples_by_nearest_neighbour_before_each_conv():
    """With every upsampling conv the identity on channel 0 (centre tap 1) and the slope 1 (no nonlinearity), the
    head's output is the LR features repeated by nearest neighbour: each LR voxel's value fills its f³ block."""
    model = build("generator", {"name": "rrdb", "channels": 4, "growth": 2, "blocks": 1, "scale": [1, 2, 4],
                                "upsampler": "nearest_conv", "negative_slope": 1.0})
    convs = [m for m in model.upsample if isinstance(m, torch.nn.Conv3d)]
    with torch.no_grad():
        for conv in convs:
            conv.weight.zero_()
            conv.bias.zero_()
            conv.weight[0, 0, 1, 1, 1] = 1
        features = torch.randn(1, 4, 3, 4, 5)
        out = model.upsample(features)
    expected = features[:, :1].repeat_interleave(2, 3).repeat_interleave(4, 4)
    assert out.shape == (1, 2, 3, 8, 20)
    torch.testing.assert_close(out[:, :1], expected)


def test_pixel_shuffle_places_channels_and_inverts():
    x = torch.arange(8.0).reshape(1, 8, 1, 1, 1)
    y = pixel_shuffle_3d(x, 2)
    assert y.shape == (1, 1, 2, 2, 2)
    assert y[0, 0, 1, 0, 1] == 5  # channel (i·2 + j)·2 + k with (i, j, k) = (1, 0, 1)
    z = torch.randn(2, 16, 3, 4, 5)
    torch.testing.assert_close(pixel_unshuffle_3d(pixel_shuffle_3d(z, 2), 2), z)



def test_pixel_shuffle_per_axis_places_every_channel_and_inverts():
    """Factors (a, b, c) = (1, 2, 4): channel C·abc + (i·b + j)·c + k goes to voxel (d·a + i, h·b + j, w·c + k)."""
    a, b, c = 1, 2, 4
    x = torch.randn(2, 3 * a * b * c, 2, 3, 2)
    y = pixel_shuffle_3d(x, (a, b, c))
    assert y.shape == (2, 3, 2 * a, 3 * b, 2 * c)
    for channel, i, j, k, d, h, w in itertools.product(range(3), range(a), range(b), range(c), range(2), range(3),
                                                       range(2)):
        assert y[1, channel, d * a + i, h * b + j, w * c + k] == x[1, channel * a * b * c + (i * b + j) * c + k, d, h, w]
    torch.testing.assert_close(pixel_unshuffle_3d(y, (a, b, c)), x)

def test_shapes_of_the_three_players():
    g = build("generator", {"name": "rrdb", "channels": 8, "growth": 4, "blocks": 1, "scale": 2})
    assert g(torch.zeros(1, 1, 6, 8, 10)).shape == (1, 1, 12, 16, 20)
    d = build("discriminator", {"name": "patch", "channels": [4, 8, 8, 8]})
    assert d(torch.zeros(2, 1, 32, 32, 32)).shape == (2, 1, 2, 2, 2)
    fe = build("feature_extractor", {"name": "resnet10", "channels": 4})
    assert fe(torch.zeros(1, 1, 32, 32, 32)).shape == (1, 32, 4, 4, 4)


def test_unknown_network_is_a_config_error():
    with pytest.raises(ConfigError, match="generator.name"):
        build("generator", {"name": "unet9000"})


@pytest.mark.parametrize("wavelets", [True, False])
def test_wavelet_unet_gives_voxelwise_logits(wavelets):
    d = build("discriminator", {"name": "wavelet_unet", "channels": 4, "depth": 4, "wavelets": wavelets,
                                "init": "default"})
    assert d(torch.randn(2, 1, 16, 16, 16)).shape == (2, 1, 16, 16, 16)
    assert (d.dwt is not None) == wavelets


def test_wavelet_unet_high_bands_reach_the_output():
    torch.manual_seed(0)
    d = build("discriminator", {"name": "wavelet_unet", "channels": 4, "depth": 3, "init": "default"}).eval()
    x = torch.randn(1, 1, 8, 8, 8)
    base = d(x)
    with torch.no_grad():
        d.dwt[0].high.weight.zero_()  # cut the finest high band's skip
    assert not torch.allclose(d(x), base)


def test_authors_normal_init_for_convs_only():
    torch.manual_seed(0)
    d = build("discriminator", {"name": "wavelet_unet", "channels": 8, "depth": 3})
    conv = d.stem[0]
    assert abs(conv.weight.std().item() - 1.0) < 0.3 and torch.all(conv.bias == 0)
    default = build("discriminator", {"name": "wavelet_unet", "channels": 8, "depth": 3, "init": "default"})
    assert default.stem[0].weight.std().item() < 0.5


def _mdcsrn_parameters(k: int, blocks: int, units: int) -> int:
    conv = lambda cin, cout, size: size**3 * cin * cout + cout  # noqa: E731
    block_out = 2 * k + units * k
    total = conv(1, 2 * k, 3) + blocks * sum(conv(2 * k + i * k, k, 3) for i in range(units))
    total += sum(conv(2 * k + b * block_out, 2 * k, 1) for b in range(1, blocks))
    return total + conv(2 * k + blocks * block_out, 1, 1)


@pytest.mark.parametrize("k,blocks,units", [(16, 4, 4), (4, 2, 3)])
def test_mdcsrn_parameter_count_and_shape(k, blocks, units):
    g = build("generator", {"name": "mdcsrn", "growth": k, "blocks": blocks, "units": units, "scale": 2})
    assert count_parameters(g) == _mdcsrn_parameters(k, blocks, units)
    assert g(torch.zeros(1, 1, 4, 6, 8)).shape == (1, 1, 8, 12, 16)


#: MTVNet's MultiLevelDenseNet (models/mDCSRN_GAN.py, k 12, 8 blocks of 4 units, pixelshuffle3D) counts these
#: parameters at x2, x3 and x4, counted from their module run on this machine; 96 of each (8k) are its
#: ``act_bottle`` PReLU, which its forward never calls and which mrisr does not build
MTVNET_MDCSRN_PARAMETERS = {2: 1_173_433, 3: 2_356_297, 4: 1_671_529}


@pytest.mark.parametrize("up", [2, 3, 4])
def test_mdcsrn_sub_pixel_has_mtvnets_parameters_less_its_unused_prelu(up):
    g = build("generator", {"name": "mdcsrn", "growth": 12, "blocks": 8, "units": 4, "batch_norm": True,
                            "reconstruction": "sub_pixel", "scale": up})
    assert count_parameters(g) == MTVNET_MDCSRN_PARAMETERS[up] - 8 * 12
    assert g(torch.zeros(1, 1, 3, 4, 5)).shape == (1, 1, 3 * up, 4 * up, 5 * up)


def test_mdcsrn_sub_pixel_upsamples_only_the_thick_axis():
    g = build("generator", {"name": "mdcsrn", "growth": 2, "blocks": 2, "units": 2, "reconstruction": "sub_pixel",
                            "scale": [1, 1, 4]})
    assert [tuple(s.shuffle.factor) for s in g.stages] == [(1, 1, 2), (1, 1, 2)]
    assert g(torch.zeros(1, 1, 5, 6, 3)).shape == (1, 1, 5, 6, 12)


def test_icnr_gives_each_lr_voxel_one_value_over_its_hr_block():
    """ICNR's point: at initialisation the expanding conv and the shuffle fill each LR voxel's 2x2x2 HR block with
    one value (biases zeroed: they are drawn per channel), so SR starts as nearest-neighbour, no checkerboard."""
    torch.manual_seed(0)
    stage = SubPixelStage(3, 3, (2, 2, 2))
    torch.nn.init.zeros_(stage.expand.bias)
    with torch.no_grad():
        hr = stage.shuffle(stage.expand(torch.randn(1, 3, 4, 5, 6)))
    blocks = hr.reshape(1, 3, 4, 2, 5, 2, 6, 2)
    torch.testing.assert_close(blocks, blocks[:, :, :, :1, :, :1, :, :1].expand_as(blocks), rtol=0, atol=0)
    assert hr.std() > 0 and abs(stage.expand.weight.std().item() - 0.02) < 0.005


def test_mdcsrn_batch_norm_units_normalise_their_input():
    g = build("generator", {"name": "mdcsrn", "growth": 4, "blocks": 1, "units": 2, "batch_norm": True, "scale": 2})
    unit = g.blocks[0].units[1]
    assert isinstance(unit[0], torch.nn.BatchNorm3d) and unit[0].num_features == 8 + 4
    assert not any(isinstance(m, torch.nn.BatchNorm3d)
                   for m in build("generator", {"name": "mdcsrn", "growth": 4, "blocks": 1, "units": 2,
                                                "scale": 2}).modules())


@pytest.mark.parametrize("activated", [True, False])
def test_wavelet_unet_skips_read_the_activated_encoder_output_as_the_authors(activated):
    """Their encoder stages begin with an in-place LeakyReLU(0.2), so the DWT unit and the skip connection of the
    previous level read its activated output; ``activated_skips: false`` gives them the raw one."""
    torch.manual_seed(0)
    d = build("discriminator", {"name": "wavelet_unet", "channels": 4, "depth": 3, "init": "default",
                                "activated_skips": activated}).eval()
    seen = {}
    d.down[0].register_forward_hook(lambda m, i, o: seen.update(conv=o))
    d.dwt[0].register_forward_hook(lambda m, i, o: seen.update(low=o[0]))
    d.dwt[1].register_forward_hook(lambda m, i, o: seen.update(dwt=i[0]))
    d.up[-1].register_forward_hook(lambda m, i, o: seen.update(last_up=i[0]))
    d(torch.randn(2, 1, 16, 16, 16))
    level0 = torch.cat([seen["conv"], seen["low"]], dim=1)  # the first level's output: conv features + low band
    expected = torch.nn.functional.leaky_relu(level0, 0.2) if activated else level0
    torch.testing.assert_close(seen["dwt"], expected)
    skip = seen["last_up"][:, -level0.shape[1] - d.dwt[0].high.out_channels:-d.dwt[0].high.out_channels]
    torch.testing.assert_close(skip, expected)
    assert (level0 < 0).any()  # so that the two settings differ


@pytest.mark.parametrize("on_output", [True, False])
def test_spectral_norm_on_the_last_conv_only_when_asked(on_output):
    d = build("discriminator", {"name": "patch", "channels": [4, 8], "norm": "spectral",
                                "spectral_norm_output": on_output})
    convs = [m for m in d.modules() if isinstance(m, torch.nn.Conv3d)]
    assert all(hasattr(m, "weight_orig") for m in convs[:-1])
    assert hasattr(convs[-1], "weight_orig") == on_output
    x = torch.randn(1, 8, 4, 4, 4)
    plain = torch.nn.functional.conv3d(x, convs[-1].weight_orig if on_output else convs[-1].weight, convs[-1].bias,
                                       padding=1)
    assert torch.allclose(convs[-1](x), plain) != on_output  # the authors' last conv is the raw weight


def test_spectral_norm_power_iteration_is_the_authors_order():
    """torch.nn.utils.spectral_norm, as theirs: in training, v = W^T u / |.|, then u = W v / |.|, σ = u·W v."""
    d = build("discriminator", {"name": "patch", "channels": [4, 8], "norm": "spectral"})
    conv = next(m for m in d.modules() if isinstance(m, torch.nn.Conv3d))
    w, u = conv.weight_orig.detach().flatten(1).clone(), conv.weight_u.clone()
    v = torch.nn.functional.normalize(w.T @ u, dim=0)
    u = torch.nn.functional.normalize(w @ v, dim=0)
    sigma = u @ w @ v
    x = torch.randn(2, 1, 8, 8, 8)
    expected = torch.nn.functional.conv3d(x, conv.weight_orig / sigma, conv.bias, padding=1)
    torch.testing.assert_close(conv.train()(x), expected)
    torch.testing.assert_close(conv.weight_u, u)


@pytest.mark.parametrize("init, std", [("kaiming", (2 / (64 * 27)) ** 0.5), ("default", (1 / 3 / (64 * 27)) ** 0.5)])
def test_resnet10_initialisation(init, std):
    """MedicalNet's (the authors') kaiming-normal with fan_out; PyTorch's default kaiming-uniform(a=√5) by fan_in."""
    torch.manual_seed(0)
    fe = build("feature_extractor", {"name": "resnet10", "channels": 8, "init": init})
    weight = fe.layer4[0].conv2.weight  # 64 -> 64, 3³: fan_in = fan_out = 1728
    assert weight.std().item() == pytest.approx(std, rel=0.03)
    assert torch.all(fe.bn1.weight == 1) and torch.all(fe.bn1.bias == 0)


def test_segmentation_head_output_is_medicalnets_conv_seg_after_layer4(tmp_path):
    """MIDL 2022's extractor (MRSRGAN mains/model/model_pretrain_resnet.py): layer 4's output goes on through
    `conv_seg` (lines 145-169: ConvTranspose3d(512, 32, 2, stride 2), BatchNorm, ReLU, Conv3d(32, 32, 3, padding 1,
    no bias), BatchNorm, ReLU, Conv3d(32, num_seg_classes = 32, 1, no bias)) and `forward` returns it (line 213).
    Written out here from that description, fed layer 4 of ours, it gives what ours with output segmentation_head
    gives; at the authors' width it adds the head's parameters to ResNet-10's 14,355,520."""
    from mrisr.models.feature_extractor import load_medicalnet_weights

    torch.manual_seed(0)
    ours = build("feature_extractor", {"name": "resnet10", "channels": 8, "output": "segmentation_head"}).eval()
    backbone = build("feature_extractor", {"name": "resnet10", "channels": 8}).eval()
    head = torch.nn.Sequential(torch.nn.ConvTranspose3d(64, 32, 2, stride=2), torch.nn.BatchNorm3d(32), torch.nn.ReLU(),
                               torch.nn.Conv3d(32, 32, 3, stride=1, padding=1, bias=False), torch.nn.BatchNorm3d(32),
                               torch.nn.ReLU(), torch.nn.Conv3d(32, 32, 1, stride=1, bias=False)).eval()
    state = ours.state_dict()
    backbone.load_state_dict({k: v for k, v in state.items() if not k.startswith("conv_seg.")})
    head.load_state_dict({k.removeprefix("conv_seg."): v for k, v in state.items() if k.startswith("conv_seg.")})
    x = torch.randn(2, 1, 16, 16, 16)
    with torch.no_grad():
        features = backbone(x)
        torch.testing.assert_close(ours(x), head(features))
    assert ours(x).shape == (2, 32, *(2 * n for n in features.shape[2:]))
    head_parameters = 512 * 32 * 8 + 32 + 2 * 32 + 32 * 32 * 27 + 2 * 32 + 32 * 32
    assert count_parameters(build("feature_extractor", {"name": "resnet10", "output": "segmentation_head"})) == (
        14_355_520 + head_parameters)
    # a weights file with the head: loaded into it; without (the backbone's only): the head keeps its weights
    with_head = {f"module.{k}": torch.full_like(v, 0.5) for k, v in state.items()}
    torch.save({"state_dict": with_head}, tmp_path / "with_head.pth")
    loaded = load_medicalnet_weights(build("feature_extractor", {"name": "resnet10", "channels": 8,
                                                                 "output": "segmentation_head"}), tmp_path / "with_head.pth")
    assert all((v == 0.5).all() for k, v in loaded.state_dict().items() if k.startswith("conv_seg.") and v.is_floating_point())
    torch.save({"state_dict": {k: v for k, v in with_head.items() if ".conv_seg." not in k}}, tmp_path / "backbone.pth")
    kept = build("feature_extractor", {"name": "resnet10", "channels": 8, "output": "segmentation_head"})
    initial = {k: v.clone() for k, v in kept.state_dict().items() if k.startswith("conv_seg.")}
    load_medicalnet_weights(kept, tmp_path / "backbone.pth")
    assert all(torch.equal(kept.state_dict()[k], v) for k, v in initial.items())
    assert (kept.conv1.weight == 0.5).all()
    # a layer-4 extractor reads a file with a head as before: the head's tensors are not its own
    assert (load_medicalnet_weights(backbone, tmp_path / "with_head.pth").conv1.weight == 0.5).all()
