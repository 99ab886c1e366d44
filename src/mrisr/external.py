"""Outside programs in their own environments: a method mrisr runs per volume but never imports.

An outside method (e.g. ECLARE: GPL-3.0, and its scipy pin needs numpy 1.x) declares its environment once, as a
conda file (``envs/<name>.yaml``): ``snakemake --use-conda`` builds that. Without conda, :func:`install` builds a
virtual environment from the file's pip section, with the interpreter running mrisr (the file's python pin must
match it), into a folder the workflow owns. When it cannot (offline, no such release), the folder holds only a
``status.json`` that says why, and the method's rows say "not computed" and why; everything else still runs.
pip reads its own configuration as usual (``PIP_INDEX_URL``, ``pip.conf``): a lab's mirror serves the pins.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

import yaml
from packaging.requirements import InvalidRequirement, Requirement

from mrisr.environments import STATUS_FILE, VENV
from mrisr.errors import InputError
from mrisr.io import write_text

log = logging.getLogger(__name__)


def requirements(env_file: str | Path) -> tuple[str, list[str]]:
    """The python version a conda environment file pins and its pip section, the lines pip installs."""
    path = Path(env_file)
    fix = "give a conda environment file: dependencies with 'python=3.X' and a 'pip:' list of pins"
    try:
        dependencies = yaml.safe_load(path.read_text())["dependencies"]
    except (OSError, yaml.YAMLError, TypeError, KeyError) as error:
        raise InputError(path, f"is no readable conda environment file ({error})", fix) from None
    if not isinstance(dependencies, list):
        raise InputError(path, "has dependencies that are not a list", fix)
    python = [d.partition("=")[2] for d in dependencies if isinstance(d, str) and d.startswith("python=")]
    sections = [d["pip"] for d in dependencies if isinstance(d, dict) and "pip" in d]
    if len(python) != 1 or len(sections) != 1:
        raise InputError(path, "pins no single python version or has not one pip section", fix)
    return python[0], pip_requirements(sections[0], path)


def pip_requirements(section, path: Path) -> list[str]:
    """A pip section as pip must read it: a list of PEP 508 requirements. A string would be installed character by
    character, and a line starting with ``-`` is an option of pip's (``--index-url``, ``--target``) that would
    change where it reads from or writes to: both refused."""
    fix = "list one requirement per line (name==version, PEP 508), with no pip options"
    if not isinstance(section, list) or not section or not all(isinstance(line, str) for line in section):
        raise InputError(path, "has a pip section that is not a list of requirement strings", fix)
    for line in section:
        if line.lstrip().startswith("-"):
            raise InputError(path, f"has a pip option in its pip section ({line[:80]!r}), not a requirement", fix)
        try:
            Requirement(line)
        except InvalidRequirement as error:
            raise InputError(path, f"has {line[:80]!r} in its pip section, which is no PEP 508 requirement "
                                   f"({str(error).splitlines()[0][:120]})", fix) from None
    return section


def local_requirement(line: str, env_file: Path, scratch: Path) -> str:
    """A requirement as pip installs it: ``name @ file:<folder>`` (a package folder, relative to the environment
    file's) built from a copy in ``scratch``, since a build writes into the folder it builds; others as they are."""
    url = Requirement(line).url
    if not url or not url.startswith("file:") or url.startswith("file://"):
        return line
    folder = (env_file.parent / url.removeprefix("file:")).resolve()
    if not folder.is_dir():
        raise InputError(env_file, f"names the package folder {folder} in its pip section, which does not exist",
                         "give the folder relative to the environment file, or an absolute file:// URL")
    copy = shutil.copytree(folder, scratch / folder.name, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    return f"{Requirement(line).name} @ {copy.as_uri()}"


def _failure(stderr: str) -> str:
    """The line of pip's complaint that says what went wrong (its last ERROR line, else its last line)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR")]
    return (errors or lines or ["pip gave no reason"])[-1]


def _check_own_environment(target: Path) -> None:
    """``target`` is rebuilt from scratch (its contents cleared): it must be absent or an environment mrisr built
    there, never a link (clearing would empty the folder it points to) nor a folder of someone else's files."""
    fix = f"remove {target} (mrisr builds the environment in a folder of its own), or give another environment folder"
    if target.is_symlink():
        raise InputError(target, f"is a link (to {os.readlink(target)}): rebuilding would empty its target", fix)
    if target.exists() and not (target / "pyvenv.cfg").is_file():
        raise InputError(target, "is a folder that holds no virtual environment: rebuilding would delete its files",
                         fix)


def install(env_file: str | Path, folder: str | Path) -> dict:
    """Build the environment of ``env_file`` in ``folder``/venv; write and return its status.

    A failed install leaves no environment behind, only the status that says why."""
    python, pins = requirements(env_file)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    if here != python and not here.startswith(f"{python}."):
        result = {"available": False, "reason": f"{env_file} pins python {python}; mrisr runs on {here} "
                                                "(use --use-conda, which builds the pinned python)"}
    else:
        target = folder / VENV
        _check_own_environment(target)
        venv.EnvBuilder(with_pip=True, clear=True).create(target)
        log.info("installing %d pins of %s into %s", len(pins), env_file, target)
        with tempfile.TemporaryDirectory() as scratch:
            lines = [local_requirement(line, Path(env_file), Path(scratch)) for line in pins]
            done = subprocess.run([target / "bin" / "python", "-m", "pip", "install", "--no-input", *lines],
                                  capture_output=True, text=True)
        if done.returncode == 0:
            log.info("%s", (done.stdout.strip().splitlines() or ["pip installed nothing"])[-1])
            result = {"available": True, "environment": str(Path(env_file).name), "pins": pins}
        else:
            shutil.rmtree(target)
            result = {"available": False, "reason": f"pip could not install {env_file}'s pins: {_failure(done.stderr)}"}
    if not result["available"]:
        log.warning("%s: %s", env_file, result["reason"])
    write_text(json.dumps(result, indent=1) + "\n", folder / STATUS_FILE)
    return result
