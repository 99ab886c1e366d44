"""An outside program's environment folder (:mod:`mrisr.external` builds it): where its virtual environment and its
status lie. Read by planning (the program's PATH) and the workflow's checkpoint (whether it is there)."""

from __future__ import annotations

from pathlib import Path

from mrisr import json_files

#: What ``mrisr external install`` writes last in the folder: whether the environment is there and, when not, why.
STATUS_FILE = "status.json"
#: The virtual environment inside the folder; its ``bin`` goes first on the outside program's PATH.
VENV = "venv"


def status(folder: str | Path) -> dict:
    """What the install left in ``folder``: ``available`` and, when not, ``reason``."""
    path = Path(folder) / STATUS_FILE
    if not path.is_file():
        return {"available": False, "reason": f"{path} does not exist (the external_environment rule writes it)"}
    return json_files.read(path)


def program_path(folder: str | Path) -> Path:
    """The folder whose programs the outside method's command finds first."""
    return Path(folder).resolve() / VENV / "bin"
