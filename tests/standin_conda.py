"""A stand-in for `conda`, for testing `snakemake --use-conda` where no conda channel is reachable.

It answers the calls Snakemake makes (`--version`, `info --json`, `config --get channel_priority --json`,
`env create --file F --prefix P`, `clean`) and records each in $STANDIN_CONDA_LOG. `env create` builds P as a venv
of the running interpreter whose site-packages also see this test environment's (the conda packages it cannot
download), checks the file's python pin against that interpreter, then installs the file's pip section as conda
does: the section written to a requirements file beside F and `pip install -U -r` run with F's folder as working
directory, so relative paths in it resolve where real conda resolves them. `<conda_prefix>/bin/activate P`, which Snakemake
sources before each job and the post-deploy script, activates the venv.
"""

import json
import os
import subprocess
import sys
import sysconfig
import tempfile
import venv
from pathlib import Path

import yaml

ROOT_PREFIX = Path(__file__).resolve().parents[1]  # of the copy at <conda_prefix>/bin/conda
ACTIVATE = '[ -n "$1" ] && . "$1/bin/activate"\n'


def _create(env_file: Path, prefix: Path) -> None:
    spec = yaml.safe_load(env_file.read_text())
    python = next(d for d in spec["dependencies"] if isinstance(d, str) and d.startswith("python="))
    if not f"{sys.version_info.major}.{sys.version_info.minor}".startswith(python.partition("=")[2]):
        sys.exit(f"stand-in conda: {python} asked, this interpreter is {sys.version.split()[0]}")
    venv.EnvBuilder(with_pip=True).create(prefix)
    site = Path(subprocess.check_output([prefix / "bin/python", "-c", "import sysconfig; print("
                                         "sysconfig.get_paths()['purelib'])"], text=True).strip())
    (site / "standin-conda-packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    pip = next((d["pip"] for d in spec["dependencies"] if isinstance(d, dict)), [])
    with tempfile.NamedTemporaryFile("w", dir=env_file.parent, prefix="condaenv.", suffix=".requirements.txt",
                                     delete=False) as requirements:
        requirements.write("\n".join(pip) + "\n")
    try:
        subprocess.run([prefix / "bin/python", "-m", "pip", "install", "--quiet", "-U", "-r", requirements.name],
                       cwd=env_file.parent, check=True)
    finally:
        os.unlink(requirements.name)


def main(args: list[str]) -> None:
    with open(os.environ["STANDIN_CONDA_LOG"], "a") as log:
        log.write(json.dumps(args) + "\n")
    if args == ["--version"]:
        print("conda 24.11.3")
    elif args[:2] == ["info", "--json"]:
        print(json.dumps({"conda_prefix": str(ROOT_PREFIX), "platform": "linux-64"}))
    elif args[:3] == ["config", "--get", "channel_priority"]:
        print(json.dumps({"get": {"channel_priority": "strict"}}))
    elif args[:1] == ["clean"]:
        pass  # no package cache: nothing is downloaded
    elif args[:2] == ["env", "create"]:
        _create(Path(args[args.index("--file") + 1]), Path(args[args.index("--prefix") + 1]))
    else:
        sys.exit(f"stand-in conda: {args} is not a call Snakemake makes")


def write_standin_conda(root: Path) -> Path:
    """``root``/bin/conda (this file, run by this interpreter) and ``root``/bin/activate; returns that bin folder,
    to put first on PATH."""
    bin_dir = root / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "conda").write_text(f"#!{sys.executable}\n" + Path(__file__).read_text())
    (bin_dir / "conda").chmod(0o755)
    (bin_dir / "activate").write_text(ACTIVATE)
    return bin_dir


if __name__ == "__main__":
    main(sys.argv[1:])
