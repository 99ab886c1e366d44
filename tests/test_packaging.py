import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pins(lines):
    return {re.split("==", line)[0].lower(): line.split("==")[1] for line in lines if "==" in line}


def test_conda_env_pins_equal_the_project_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    env = yaml.safe_load((ROOT / "envs" / "mrisr.yaml").read_text())
    pip = next(d for d in env["dependencies"] if isinstance(d, dict))["pip"]
    assert all("==" in dep for dep in project), "every runtime dependency is pinned exactly"
    assert _pins(pip) == _pins(project)
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python="))
    assert python == "python=3.11"


def test_the_no_deps_packages_are_pinned_and_installed_by_both_environments():
    """envs/no-deps.txt (packages whose declared bounds conflict with the pins): each pinned exactly, none also a
    project pin, installed with --no-deps by the Makefile's venv and by the conda env's post-deploy script."""
    lines = [line for line in (ROOT / "envs" / "no-deps.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert lines and all("==" in line for line in lines) and not set(_pins(lines)) & set(_pins(project))
    assert "pip install --quiet --no-deps -r envs/no-deps.txt" in (ROOT / "Makefile").read_text()
    assert '--no-deps -r "$MRISR_CHECKOUT/envs/no-deps.txt"' in (ROOT / "envs" / "mrisr.post-deploy.sh").read_text()


def test_readme_quick_start_has_two_commands_and_ci_runs_the_second():
    text = (ROOT / "README.md").read_text()
    block = re.search(r"^## Quick start.*?```\w*\n(.*?)```", text, re.S | re.M).group(1)
    commands = [line.strip() for line in block.splitlines() if line.strip() and not line.startswith("#")]
    assert len(commands) == 2
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.startswith(("#", "set ", "cd "))]
    assert ci == ["export MRISR_SYSTEM_PACKAGES=1", commands[1]]  # the one opt-in: CI may apt-get install


def test_licence_and_citation_agree_with_the_project():
    """LICENSE, CITATION.cff, pyproject and README name one licence and one version; the citation lists the four
    works the project reproduces with the identifiers in the papers' spec."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert (ROOT / "LICENSE").read_text().startswith("MIT License") and citation["license"] == "MIT"
    assert project["license"]["text"] == "MIT"
    assert "Code: MIT." in (ROOT / "README.md").read_text()
    assert citation["version"] == project["version"] and citation["cff-version"] == "1.2.0"
    identifiers = {i["value"] for r in citation["references"] for i in r.get("identifiers", [])}
    assert identifiers == {"arXiv:2303.13900", "arXiv:2308.12084"} and len(citation["references"]) == 4
    assert {r["year"] for r in citation["references"]} == {2022, 2023}


def test_the_wheel_works_with_no_checkout_anywhere(tmp_path):
    """A lab's install: the wheel built from the sources, installed into a fresh environment that sees this one's
    dependencies but not its editable mrisr, run from a folder outside any checkout: every command is listed, a model
    card prints, and a scan super-resolved by it equals this checkout's result."""
    import shutil
    import subprocess
    import sys
    import sysconfig
    import venv

    import nibabel as nib
    import numpy as np

    from mrisr.cli import main
    from mrisr.commands import COMMANDS
    from tests.conftest import head, write_bids_dataset, write_model

    source = tmp_path / "source"  # a copy: building in the checkout would leave build/ there
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
                    "-w", str(tmp_path / "dist"), str(source)], check=True)
    fresh = tmp_path / "fresh"
    venv.EnvBuilder(with_pip=True).create(fresh)
    site = Path(subprocess.check_output([fresh / "bin/python", "-c", "import sysconfig; print(sysconfig.get_paths()"
                                         "['purelib'])"], text=True).strip())
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # no .pth inside it is read
    wheel = next((tmp_path / "dist").glob("mrisr-*.whl"))
    subprocess.run([fresh / "bin/python", "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", wheel],
                   check=True)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}

    def mrisr(*args):
        return subprocess.run([fresh / "bin/mrisr", *map(str, args)], cwd=work, env=env, capture_output=True,
                              text=True)

    where = subprocess.run([fresh / "bin/python", "-c", "import mrisr; print(mrisr.__file__)"], cwd=work, env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert Path(where).is_relative_to(site), where
    listed = mrisr("--help")
    assert listed.returncode == 0, listed.stderr
    assert all(names[0] in listed.stdout for names in COMMANDS)
    model = write_model(work / "model.safetensors", {"name": "rrdb", "channels": 4, "growth": 4, "blocks": 1, "scale": 2})
    card = mrisr("model-card", model)
    assert card.returncode == 0 and "variant: tiny" in card.stdout, card.stderr
    nib.save(nib.Nifti1Image(head(np.random.default_rng(3)), np.diag([2.0, 2.0, 2.0, 1.0])), work / "scan.nii.gz")
    applied = mrisr("super-resolve", "--model", model, work / "scan.nii.gz", work / "sr.nii.gz")
    assert applied.returncode == 0, applied.stderr
    assert main(["super-resolve", "--model", str(model), str(work / "scan.nii.gz"), str(tmp_path / "here.nii.gz")]) == 0
    np.testing.assert_array_equal(np.asanyarray(nib.load(work / "sr.nii.gz").dataobj),
                                  np.asanyarray(nib.load(tmp_path / "here.nii.gz").dataobj))
    bids = write_bids_dataset(work / "bids", {"sub-01/anat/sub-01_T1w.nii.gz": head(np.random.default_rng(3))})
    derivatives = mrisr("super-resolve", "--model", model, "--bids", bids, bids / "derivatives" / "mrisr")
    assert derivatives.returncode == 0, derivatives.stderr
    np.testing.assert_array_equal(
        np.asanyarray(nib.load(bids / "derivatives/mrisr/sub-01/anat/sub-01_desc-sr_T1w.nii.gz").dataobj),
        np.asanyarray(nib.load(tmp_path / "here.nii.gz").dataobj))
