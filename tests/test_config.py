import copy
import json
from pathlib import Path

import pytest
import yaml

from mrisr import config
from mrisr.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"


@pytest.fixture
def demo():
    return yaml.safe_load((ROOT / "config.yaml").read_text())


def test_demo_config_is_valid_and_gets_defaults(demo):
    del demo["inference"]
    out = config.validate(demo, SCHEMA)
    assert out["inference"] == {"tile": 160, "halo": 8, "reconstruct_tile": 32, "batch": 1, "precision": None,
                                "compile": "none"}
    assert out["variants"]["esrgan"]["instance_noise"] == {"start": 0.0, "end": 0.0, "epochs": None}


def test_unknown_key_is_named_with_a_suggestion(demo):
    demo["train"]["stpes"] = 10
    with pytest.raises(ConfigError) as err:
        config.validate(demo, SCHEMA)
    assert err.value.key == "train.stpes"
    assert "did you mean 'steps'" in str(err.value)


def test_wrong_type_and_range_name_the_key(demo):
    bad = copy.deepcopy(demo)
    bad["train"]["steps"] = "many"
    with pytest.raises(ConfigError, match="train.steps"):
        config.validate(bad, SCHEMA)
    bad = copy.deepcopy(demo)
    bad["train"]["patch_size"] = 30
    with pytest.raises(ConfigError, match="train.patch_size"):
        config.validate(bad, SCHEMA)


def test_dangling_references_are_refused(demo):
    demo["train"]["degradation"] = "kspace"
    with pytest.raises(ConfigError, match="train.degradation"):
        config.validate(demo, SCHEMA)



def test_run_variants_must_name_known_variants(demo):
    demo["run_variants"] = ["esrgan", "esrgna"]
    with pytest.raises(ConfigError, match="run_variants") as err:
        config.validate(demo, SCHEMA)
    assert "esrgna" in str(err.value)


def test_every_demo_variant_builds_from_config_alone(demo):
    from mrisr.train.gan import GanTrainer
    from tests.conftest import train_settings

    variants = config.validate(demo, SCHEMA)["variants"]
    settings = train_settings(steps=1, batch_size=1, patch_size=32, checkpoint_every=1, degradation={"method": "nearest", "blur_fwhm": 2.0})
    kinds = {name: {k: type(v).__name__ for k, v in GanTrainer(spec, settings).players().items()}
             for name, spec in variants.items() if spec["kind"] == "gan"}
    assert kinds["wgan_gp"] == {"generator": "MDCSRNGenerator", "discriminator": "PatchDiscriminator"}
    assert kinds["disgan"]["discriminator"] == "WaveletUNetDiscriminator"
    assert variants["threeplayer"]["feature_extractor"]["trainable"] is True
    assert variants["threeplayer_frozen_fe"]["feature_extractor"]["trainable"] is False
    assert variants["threeplayer_no_noise"]["instance_noise"]["start"] == 0.0
    assert variants["threeplayer_standard_gan"]["losses"]["gan"] == "standard"
    assert variants["disgan_no_dwt"]["discriminator"]["wavelets"] is False


def test_an_overlay_alone_is_read_over_the_demo_config():
    """`snakemake --configfile workflow/configs/hcp.yaml` (Snakemake then skips the Snakefile's config.yaml) plans the
    config that `--configfile config.yaml workflow/configs/hcp.yaml` does; a --config value still wins."""
    demo = yaml.safe_load((ROOT / "config.yaml").read_text())
    overlay = yaml.safe_load((ROOT / "workflow" / "configs" / "hcp.yaml").read_text())
    alone = config.on_base({**overlay, "seed": 7}, ROOT / "config.yaml")
    assert alone == config.merge(config.merge(demo, overlay), {"seed": 7})
    assert alone["variants"]["disgan_no_dwt"]["discriminator"]["name"] == "wavelet_unet"  # from config.yaml
    assert alone["variants"]["disgan_no_dwt"]["discriminator"]["depth"] == overlay["variants"]["disgan_no_dwt"][
        "discriminator"]["depth"]


def test_authors_overlay_gives_the_authors_parameter_counts(demo):
    from mrisr.models.registry import build, count_parameters

    for name in ("authors.yaml", "hcp.yaml"):  # the paper-scale command's order
        demo = config.merge(demo, yaml.safe_load((ROOT / "workflow" / "configs" / name).read_text()))
    cfg = config.validate(demo, SCHEMA)
    assert cfg["train"]["patch_size"] == 64 and cfg["train"]["batch_size"] == 4 * cfg["train"]["gpus"]
    counts = {}
    for name, spec in cfg["variants"].items():
        if spec["kind"] == "gan":
            for role in ("generator", "discriminator"):
                key = (role, json.dumps(spec[role], sort_keys=True))
                if key not in counts:
                    network = dict(spec[role], scale=2) if role == "generator" else spec[role]
                    counts[key] = count_parameters(build(role, network))
                assert counts[key] in {16_042_881, 14_066_369, 42_653_827, 45_216_689, 410_241, 11_065_537,
                                       11_065_281}, (name, role)
    fe = cfg["variants"]["threeplayer"]["feature_extractor"]
    assert count_parameters(build("feature_extractor", {"name": "resnet10", "channels": fe["channels"]})) == 14_355_520
    assert cfg["variants"]["esrgan"]["discriminator"]["norm"] == "instance"
    assert cfg["variants"]["disgan"]["discriminator"]["name"] == "wavelet_unet"


def test_segmentation_settings_are_checked_against_the_rest(demo):
    bad = copy.deepcopy(demo)
    bad["segmentation"]["sr_variant"] = "esrgna"
    with pytest.raises(ConfigError, match="segmentation.sr_variant.*esrgna"):
        config.validate(bad, SCHEMA)
    bad = copy.deepcopy(demo)
    bad["segmentation"]["network"]["channels"] = [8, 16, 32, 64, 128]  # halves 4 times: patch must divide by 16
    bad["segmentation"]["patch_size"] = 40
    with pytest.raises(ConfigError, match="segmentation.patch_size.*divisible by 16"):
        config.validate(bad, SCHEMA)
    bad = copy.deepcopy(demo)
    bad["segmentation"]["network"]["name"] = "vnet"
    with pytest.raises(ConfigError, match="segmentation.network.name"):
        config.validate(bad, SCHEMA)


def test_authors_overlay_sets_every_switch_to_their_code(demo):
    """Each switch of authors.yaml replaces a value that differs from it (ours), and reaches the variants."""
    overlay = yaml.safe_load((ROOT / "workflow" / "configs" / "authors.yaml").read_text())
    ours = config.validate(copy.deepcopy(demo), SCHEMA)
    theirs = config.validate(config.merge(demo, copy.deepcopy(overlay)), SCHEMA)

    def leaves(tree, prefix=()):
        for key, value in tree.items():
            yield from leaves(value, prefix + (key,)) if isinstance(value, dict) else [(prefix + (key,), value)]

    def get(tree, keys):
        for key in keys:
            tree = tree.get(key, {})  # a variant's own train keys: absent in ours
        return tree

    for keys, value in leaves(overlay):
        if keys[:2] in (("variants", "wgan_gp_rrdb"), ("variants", "mrsrgan")) or keys[0] == "papers":
            continue  # variants that config.yaml does not have; the tables that show them
        assert get(ours, keys) != value, keys  # not a no-op
        assert get(theirs, keys) == value, keys
    assert theirs["train"]["precision"] == "fp32" and theirs["train"]["relativistic_mean"] == "process"
    frozen = [n for n, v in theirs["variants"].items() if v["kind"] == "gan" and v["losses"]["feature"] > 0
              and not v["feature_extractor"]["trainable"]]
    assert frozen and all(theirs["variants"][n]["feature_extractor"]["frozen_mode"] == "train" for n in frozen)
    noisy = [n for n, v in theirs["variants"].items() if v["kind"] == "gan" and v["instance_noise"]["start"] > 0]
    assert noisy and all(theirs["variants"][n]["instance_noise"]["epochs"] == 20 for n in noisy)
    wgan = theirs["variants"]["wgan_gp_rrdb"]
    assert wgan["update_order"] == "discriminator_first" and wgan["generator"]["batch_norm"] is True
    assert (wgan["generator_eval_epochs"], wgan["generator_step_real_pass"]) == (20, "when_needed")
    assert "wgan_gp_rrdb" in theirs["papers"]["threeplayer"]["methods"]
    midl = theirs["variants"]["mrsrgan"]  # MIDL 2022's SR model, the segmentation study's
    assert theirs["segmentation"]["sr_variant"] == "mrsrgan"
    assert (midl["warmup_fraction"], midl["discriminator_every"], midl["optimiser"]["lr"]) == (0.05, 5, 2e-4)
    assert (midl["losses"]["pixel"], midl["losses"]["feature"]) == (0.01, 1.0)
    assert midl["feature_extractor"]["output"] == "segmentation_head" and midl["feature_extractor"]["weights"] is None
    assert theirs["train"]["patch_sampling"] == "grid" and theirs["train"]["patch_stride"] == 16
    assert theirs["train"]["epochs"] == 20 and config.variant_training(theirs, "disgan")["window_fraction"] == 0.25
    assert {n: (t["batch_size"], t["gpus"]) for n in ("mrsrgan", "wgan_gp_rrdb", "threeplayer")
            for t in [config.variant_training(theirs, n)]} == {"mrsrgan": (4, 1), "wgan_gp_rrdb": (4, 1),
                                                              "threeplayer": (ours["train"]["batch_size"], 1)}
    assert theirs["prepare"]["normalise_first"] is True and theirs["prepare"]["orientation"] == "stored"
    assert theirs["train"]["memory_format"] == "contiguous" and theirs["inference"]["precision"] == "fp32"


@pytest.mark.parametrize("where, value", [
    (("datasets", "hcp"), {"source": "hcp", "subjects": ["100307\n"]}),
    (("datasets", "ixi"), {"source": "ixi", "url": "http://127.0.0.1:9/IXI-T1.tar", "subjects": ["IXI002\n"]}),
    (("datasets", "ixi"), {"source": "ixi", "url": "http://127.0.0.1:9/IXI-T1.tar", "subjects": ["IXI002"],
                           "md5": "0" * 32 + "\n"}),
    (("downloads", "w"), {"url": "http://127.0.0.1:9/w.pth", "sha256": "0" * 64 + "\n"}),
])
def test_an_id_or_hash_with_a_trailing_newline_is_refused(demo, where, value):
    """Python's `$` also matches before a final newline: the schema's patterns anchor at the string's very end."""
    demo.setdefault(where[0], {})[where[1]] = value
    with pytest.raises(ConfigError, match="does not match"):
        config.validate(demo, SCHEMA)
    trimmed = json.loads(json.dumps(value).replace("\\n", ""))
    demo[where[0]][where[1]] = trimmed
    config.validate(demo, SCHEMA)



@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
def test_a_config_number_that_is_not_finite_is_named(demo, tmp_path, value):
    """YAML's .nan passes every JSON-schema range (comparisons with NaN are false)."""
    demo["pretrain"] = {"lr": yaml.safe_load(value)}
    with pytest.raises(ConfigError, match=r"config key 'pretrain.lr': is not a finite number"):
        config.validate(demo, SCHEMA)


def test_a_variant_trains_under_its_own_batch_and_gpus_and_grid_keys_need_the_grid(demo):
    """variants.<name>.train overrides train's batch, GPUs and window fraction for that variant alone; a batch
    that does not split over the GPUs, and the grid's keys without grid sampling, are refused with the key named."""
    demo["train"] |= {"batch_size": 8, "gpus": 2, "patch_sampling": "grid", "epochs": 3}
    demo["variants"]["esrgan"]["train"] = {"batch_size": 4, "gpus": 1, "window_fraction": 0.5}
    valid = config.validate(copy.deepcopy(demo), SCHEMA)
    assert config.variant_training(valid, "esrgan") == valid["train"] | {"batch_size": 4, "gpus": 1,
                                                                        "window_fraction": 0.5}
    assert config.variant_training(valid, "threeplayer") == valid["train"]
    for changes, key in (({"variants": {"esrgan": {"train": {"batch_size": 3, "gpus": 2}}}},
                          "variants.esrgan.train.batch_size"),
                         ({"train": {"patch_sampling": "random"}}, "train.epochs"),
                         ({"train": {"patch_sampling": "random", "epochs": None}},
                          "variants.esrgan.train.window_fraction")):
        with pytest.raises(ConfigError, match=f"'{key}'"):
            config.validate(config.merge(copy.deepcopy(demo), changes), SCHEMA)


@pytest.mark.parametrize("command, quoted", [
    ('run-eclare --in-fpath "{lr}" --out-dir {out_dir}', "lr"), ("run-eclare --in-fpath '{lr}'", "lr"),
    ('run-eclare "--in-fpath={lr}" --out-dir {out_dir}', "lr"), ('run-eclare --in-fpath {lr} --out-dir "{out_dir}"',
                                                                 "out_dir"),
    ("run-eclare --in-fpath={lr} --out-dir {out_dir}", None), ('run-eclare --note "x" {lr} {out_dir}', None),
    ('run-eclare \\"{lr}\\" {out_dir}', None)])
def test_an_outside_command_that_quotes_a_placeholder_is_refused(demo, command, quoted):
    """mrisr quotes each value it fills in (shlex.quote); a template that puts a placeholder inside its own quotes
    would undo that, so that a path holding $(...) runs: refused, naming the key and the placeholder."""
    demo["variants"]["eclare"]["command"] = command
    if quoted is None:
        config.validate(demo, SCHEMA)
        return
    with pytest.raises(ConfigError, match=rf"variants\.eclare\.command.*puts \{{{quoted}\}} inside shell quotes"):
        config.validate(demo, SCHEMA)


def test_mtvnet_metrics_need_intensities_in_the_unit_range(demo):
    demo["mtvnet_metrics"] = True
    with pytest.raises(ConfigError, match="mtvnet_metrics") as err:
        config.validate(copy.deepcopy(demo), SCHEMA)
    assert "prepare.intensities: unit_range" in str(err.value)
    demo["prepare"]["intensities"] = "unit_range"
    assert config.validate(demo, SCHEMA)["mtvnet_metrics"] is True
