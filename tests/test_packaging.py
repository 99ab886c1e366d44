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
