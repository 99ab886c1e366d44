import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(2)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


SCHEMA = __import__("pathlib").Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"


def filled_variant(spec: dict) -> dict:
    """A variant block with the schema's defaults filled in, as the workflow hands it to training."""
    from mrisr import config

    return config.validate({"datasets": {"demo": {"source": "demo"}}, "variants": {"v": spec},
                            "segmentation": {"enabled": False}}, SCHEMA)["variants"]["v"]
