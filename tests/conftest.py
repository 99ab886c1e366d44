import json

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(2)


@pytest.fixture(autouse=True, scope="session")
def _cache(tmp_path_factory):
    """The user's cache (the training layout's probe) in the session's own folder, commands run by tests too."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture
def rng():
    return np.random.default_rng(0)


SCHEMA = __import__("pathlib").Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"


def filled_variant(spec: dict) -> dict:
    """A variant block with the schema's defaults filled in, as the workflow hands it to training."""
    from mrisr import config

    return config.validate({"datasets": {"demo": {"source": "demo"}}, "variants": {"v": spec},
                            "segmentation": {"enabled": False}}, SCHEMA)["variants"]["v"]


def train_settings(**values):
    """GAN training settings as the workflow passes them: the schema's defaults, then ``values``."""
    from mrisr.config import schema_default
    from mrisr.settings import TrainSettings

    keys = ("precision", "memory_format", "patch_sampling", "patch_stride", "window_fraction", "epochs",
            "shared_discriminator_pass", "relativistic_mean", "cudnn_benchmark", "tf32", "compile")
    defaults = {k: schema_default(f"train.{k}") for k in keys} | {"scale": schema_default("scale"),
                                                                  "seed": schema_default("seed")}
    return TrainSettings(**(defaults | values))


def segmentation_settings(**values):
    """Segmentation training settings as the workflow passes them: the schema's defaults, then ``values``."""
    from mrisr.config import schema_default
    from mrisr.settings import SegSettings

    defaults = {"sr_fraction": schema_default("segmentation.sr_fraction"),
                "precision": schema_default("train.precision")}
    return SegSettings(**(defaults | values))


def inference_settings(**values):
    """Windowed inference as the CLI passes it when no option is given: the schema's ``inference.*``, then
    ``values``."""
    from mrisr.config import schema_default
    from mrisr.inference import Inference

    keys = ("tile", "halo", "reconstruct_tile", "batch", "precision")
    return Inference(**({k: schema_default(f"inference.{k}") for k in keys} | {"pasted": False} | values))


def write_model(path, generator: dict, **card):
    """A model file as the train stage writes it: ``generator`` (with its scale) at random weights and a model
    card whose fields ``card`` overrides (defaults: 1 mm HR voxels, crop none, whole-volume z-score)."""
    from mrisr.model_card import make_card, save_model
    from mrisr.models.registry import build

    unscaled = {k: v for k, v in generator.items() if k != "scale"}  # the variant's block: the run gives the scale
    fields = dict(variant_name="tiny", variant={"kind": "gan", "generator": unscaled}, scale=generator["scale"],
                  hr_voxel_mm=1.0,
                  preprocessing={"orientation": "RAS", "crop": "none", "margin": 4, "normalise": "volume"},
                  degradation={"method": "nearest"},
                  training={"dataset": "demo", "subjects": ["01", "02"], "steps": 3, "batch_size": 1, "seed": 0})
    torch.manual_seed(0)
    return save_model(path, generator, build("generator", generator).state_dict(), make_card(**(fields | card)))


def read_model_parts(path) -> dict:
    """A model file's generator config, state dict and card, read with safetensors itself (not mrisr's reader)."""
    from safetensors import safe_open

    with safe_open(path, "pt") as f:
        metadata, state_dict = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    return {"generator": json.loads(metadata["generator"]), "state_dict": state_dict,
            "card": json.loads(metadata["card"])}


def write_model_parts(path, parts: dict, legacy: bool = False):
    """``parts`` as a model file, through safetensors itself; ``legacy``: as an earlier mrisr wrote its model.pt
    (``torch.save`` of the three parts)."""
    from safetensors.torch import save_file

    if legacy:
        torch.save(parts, path)
    else:
        save_file(parts["state_dict"], path, metadata={"format": "pt", "generator": json.dumps(parts["generator"]),
                                                       "card": json.dumps(parts["card"])})
    return path


#: ``python -c`` this, a file name and mrisr's arguments: ``python -m mrisr`` that writes its peak resident memory
#: (the kernel's VmHWM of its own address space, in kB) to the file when it exits
_WATCHED = """
import atexit, re, runpy, sys
report = sys.argv.pop(1)
def peak():
    with open("/proc/self/status") as f, open(report, "w") as out:
        out.write(re.search(r"VmHWM:\\s+(\\d+) kB", f.read())[1])
atexit.register(peak)
runpy.run_module("mrisr", run_name="__main__", alter_sys=True)
"""


def mrisr_with_peak_memory(*args, stderr_file) -> tuple[int, str, float]:
    """``mrisr ARGS`` in a process of its own: exit code, stderr (kept in ``stderr_file``) and peak resident memory
    in MB, the high-water mark of that process's own memory (the rusage of a child counts its parent's memory too,
    which a spawned child inherits as its maximum on exec)."""
    import subprocess
    import sys

    report = f"{stderr_file}.peak"
    with open(stderr_file, "w") as err:
        code = subprocess.run([sys.executable, "-c", _WATCHED, report, *map(str, args)], stdout=subprocess.DEVNULL,
                              stderr=err).returncode
    return code, open(stderr_file).read(), int(open(report).read()) / 1024


def head(rng, shape=(20, 22, 18)) -> np.ndarray:
    """A scan with integer intensities 0..255: a bright ellipsoid (the head) with texture on a dark background."""
    grid = np.indices(shape).astype(float)
    centre = (np.array(shape) - 1)[:, None, None, None] / 2
    inside = (((grid - centre) / (np.array(shape)[:, None, None, None] * 0.38)) ** 2).sum(0) < 1
    return np.where(inside, rng.integers(120, 250, shape), rng.integers(0, 12, shape)).astype(np.uint8)


#: The tests' BIDS dataset: two subjects, one with two sessions, one with two runs.
BIDS_T1W = ("sub-01/ses-1/anat/sub-01_ses-1_T1w.nii.gz", "sub-01/ses-2/anat/sub-01_ses-2_T1w.nii.gz",
            "sub-02/anat/sub-02_run-1_T1w.nii.gz", "sub-02/anat/sub-02_run-2_T1w.nii.gz")


def write_bids_dataset(root, volumes: dict, affine=None, derivatives: dict | None = None):
    """A BIDS dataset at ``root``: ``volumes`` maps each path in it to an array; ``derivatives`` maps
    ``(folder, path)`` to an array in a derivatives dataset ``root/derivatives/<folder>``."""
    import json
    from pathlib import Path

    import nibabel as nib

    root = Path(root)
    affine = np.diag([2.0, 2.0, 2.0, 1.0]) if affine is None else affine
    description = {"Name": "mrisr test", "BIDSVersion": "1.10.0"}
    for place, volume in [*volumes.items(), *((Path("derivatives") / f / p, v) for (f, p), v in (derivatives or {}).items())]:
        (root / place).parent.mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(volume, affine), root / place)
    (root / "dataset_description.json").write_text(json.dumps(description))
    for folder in {f for f, _ in derivatives or {}}:
        (root / "derivatives" / folder / "dataset_description.json").write_text(json.dumps(
            description | {"DatasetType": "derivative", "GeneratedBy": [{"Name": "masks by hand"}]}))
    return root


@pytest.fixture(scope="session")
def plugin_site(tmp_path_factory):
    """The example plugin package (examples/plugin) installed as a package into a folder of its own, offline: put
    it on the path (sys.path, PYTHONPATH) to have the plugin installed, leave it off to have it removed."""
    import shutil
    import subprocess
    import sys

    source = shutil.copytree(SCHEMA.parents[2] / "examples" / "plugin", tmp_path_factory.mktemp("plugin") / "src")
    site = tmp_path_factory.mktemp("plugin_site")  # the build leaves its files in the copy, not in the checkout
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(site), str(source)], check=True)
    return site


@pytest.fixture(scope="session")
def eclare_index(tmp_path_factory):
    """A package index on 127.0.0.1 that serves the stand-in ECLARE 1.0.1 (examples/standin_eclare), built offline:
    its URL. Point pip at it alone with :func:`pip_from`."""
    import http.server
    import shutil
    import subprocess
    import sys
    import threading
    from functools import partial

    source = shutil.copytree(SCHEMA.parents[2] / "examples" / "standin_eclare", tmp_path_factory.mktemp("eclare") / "src")
    root = tmp_path_factory.mktemp("index")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
                    "--wheel-dir", str(root / "simple" / "eclare"), str(source)], check=True)
    class Index(http.server.SimpleHTTPRequestHandler):  # a folder's page lists its files: pip's simple API
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Index, directory=str(root)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/simple/"
    httpd.shutdown()


def pip_from(index: str) -> dict[str, str]:
    """The environment variables that make pip read ``index`` and nothing else (no pip.conf, no local wheels)."""
    import os

    return {"PIP_CONFIG_FILE": os.devnull, "PIP_INDEX_URL": index, "PIP_NO_CACHE_DIR": "1", "PIP_RETRIES": "0",
            "PIP_TIMEOUT": "5", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
