import copy
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
    assert out["inference"] == {"tile": 48, "halo": 16}
    assert out["variants"]["esrgan"]["instance_noise"] == {"start": 0.0, "end": 0.0}


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

