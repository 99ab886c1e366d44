"""The README fits on a screen or two and links every page of ``docs/``; every command in a ``bash`` block of
either is run, as written, by a test or by the demo; every config example validates."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

#: How each documented command is run. "quick start": the demo is `make demo`, and `.ci/run` runs `make test`
#: (tests/test_packaging.py checks that); "tiny run": test_workflow.py runs it in the tiny workflow's folder, with
#: that run's Snakefile and config added to Snakemake's options; "home": below, with HOME in a temporary folder,
#: Snakemake planning only (-n: submitting is tests/test_slurm.py's); "bids plan": below, on a BIDS dataset made
#: to fit docs/data.md's example, planning only.
HOW = {
    "make demo": "quick start",
    "make test": "quick start",
    ". .venv/bin/activate": "tiny run",
    "snakemake --cores 2 results/papers/demo/threeplayer/sr_comparison.png": "tiny run",
    "snakemake --report results/report.html": "tiny run",
    "mrisr model-card results/evaluate/demo/model_cards/esrgan.safetensors": "tiny run",
    "mrisr super-resolve --model results/evaluate/demo/model_cards/esrgan.safetensors my_T1w.nii.gz my_T1w_sr.nii.gz": "tiny run",
    "mrisr super-resolve --model results/evaluate/demo/model_cards/esrgan.safetensors scans/ sr/": "tiny run",
    "mrisr super-resolve --model results/evaluate/demo/model_cards/esrgan.safetensors --bids bids/ bids/derivatives/mrisr":
        "tiny run",
    "mkdir -p ~/.config/snakemake && cp -r workflow/profiles/slurm ~/.config/snakemake/slurm": "home",
    "export AWS_PROFILE=hcp": "home",
    "snakemake --profile slurm --configfile workflow/configs/authors.yaml workflow/configs/hcp.yaml": "home",
    "snakemake --cores 2 --configfile lab.yaml": "bids plan",
}


def blocks(page: Path, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", page.read_text(), re.S | re.M)


def commands(page: Path) -> list[str]:
    """The commands of a page's ``bash`` blocks: comments dropped, continued lines joined."""
    found = []
    for block in blocks(page, "bash"):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#\s.*$", "", line).strip()
            if line and not line.startswith("#"):
                found.append(line)
    return found


def documented(how: str) -> list[str]:
    """The documented commands run in the way ``how``, in page order."""
    return [c for page in PAGES for c in commands(page) if HOW.get(c) == how]


def slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_readme_fits_on_a_screen_or_two_and_links_every_page():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    linked = set(re.findall(r"\]\((docs/[\w-]+\.md)", readme))
    assert linked == {f"docs/{p.name}" for p in PAGES[1:]}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_link_and_anchor_resolves(page):
    for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
        if target.startswith(("http://", "https://")):
            continue
        file, _, anchor = target.partition("#")
        linked = (page.parent / file).resolve() if file else page
        assert linked.exists(), f"{page.name}: {target}"
        if anchor:
            headings = re.findall(r"^#+ (.*)$", linked.read_text(), re.M)
            assert anchor in {slug(h) for h in headings}, f"{page.name}: {target}"


def test_every_documented_command_is_run_by_a_test_or_the_demo():
    found = {c for page in PAGES for c in commands(page)}
    assert found == set(HOW), (found - set(HOW), set(HOW) - found)
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo: install\n\t\$\(BIN\)/snakemake --cores", makefile, re.M)


def test_the_cluster_commands_plan_the_paper_run_through_the_slurm_profile(tmp_path):
    env = dict(os.environ, HOME=str(tmp_path), PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    script = "\n".join(["set -e", *(c + (f" -n --directory {tmp_path / 'wd'}" if c.startswith("snakemake") else "")
                                    for c in documented("home"))])
    result = subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / ".config/snakemake/slurm/config.v8+.yaml").is_file()
    assert "results/papers/hcp/threeplayer/method_comparison.csv" in result.stdout
    assert not (tmp_path / "wd" / ".snakemake" / "slurm_logs").exists()  # planning submits nothing


def test_the_bids_example_validates_and_plans_a_dataset_that_fits_it(tmp_path):
    """docs/data.md's example entry, its path set to a dataset with two sessions and an acquisition per subject,
    plans the workflow through `snakemake --cores 2 --configfile lab.yaml` (-n)."""
    from tests.conftest import head, write_bids_dataset

    rng = np.random.default_rng(0)
    scans = {f"sub-{s}/ses-{n}/anat/sub-{s}_ses-{n}_acq-{a}_T1w.nii.gz": head(rng, (24, 26, 22))
             for s in ("01", "02", "03", "04") for n in ("1", "2") for a in ("mprage", "fast")}
    masks = {("masks", f"sub-{s}/ses-1/anat/sub-{s}_ses-1_desc-{d}_mask.nii.gz"): np.ones((24, 26, 22), np.uint8)
             for s in ("01", "02") for d in ("brain", "head")}
    root = write_bids_dataset(tmp_path / "my_study", scans, derivatives=masks)
    [example] = [b for b in blocks(ROOT / "docs" / "data.md", "yaml") if "source: bids" in b]
    lab = yaml.safe_load(example)
    lab["datasets"]["lab"]["path"] = str(root)
    (tmp_path / "lab.yaml").write_text(yaml.safe_dump(lab))
    [command] = documented("bids plan")
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    result = subprocess.run(f"{command} -n -s {ROOT / 'Snakefile'} --directory {tmp_path / 'wd'}", shell=True,
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    for subject in ("01", "02", "03", "04"):
        chosen = f"{root}/sub-{subject}/ses-1/anat/sub-{subject}_ses-1_acq-mprage_T1w.nii.gz"
        assert chosen in result.stdout and chosen.replace("ses-1", "ses-2") not in result.stdout
    assert f"{root}/derivatives/masks/sub-01/ses-1/anat/sub-01_ses-1_desc-brain_mask.nii.gz" in result.stdout
    assert "desc-head_mask" not in result.stdout


def test_the_extending_page_names_files_that_exist_and_names_that_resolve():
    """docs/extending.md: each backticked path is a file of the checkout (a ``<name>`` placeholder: its folder is),
    each backticked ``mrisr.`` name imports, and each section's worked example names code as it is."""
    import importlib

    page = (ROOT / "docs" / "extending.md").read_text()
    sections = re.split(r"^## ", page, flags=re.M)[1:]
    assert [s.splitlines()[0] for s in sections] == ["A new network, built in", "A new network, as a plugin",
                                                     "A new degradation", "A new figure or table",
                                                     "A new outside method", "A new dataset source"]
    spans = re.findall(r"`([^`]+)`", page)
    paths = [s for s in spans if re.fullmatch(r"[\w./<>-]+\.(py|yaml|md|rst|smk|toml|tsv)", s)]
    assert len(paths) >= 25
    for path in paths:
        target = ROOT / path
        assert (target.parent if "<" in path else target).exists(), path
    names = [s for s in spans if re.fullmatch(r"mrisr(\.\w+)+", s) and s not in ("mrisr.generators", "mrisr.discriminators")]
    for name in names:
        parts = name.split(".")
        for cut in range(len(parts), 0, -1):  # the longest importable module, then attributes
            try:
                found = importlib.import_module(".".join(parts[:cut]))
                break
            except ModuleNotFoundError:
                continue
        for attribute in parts[cut:]:
            found = getattr(found, attribute)
    from mrisr.commands import COMMANDS
    from mrisr.models.registry import BUILDERS, PLUGIN_GROUPS
    from mrisr.plan.papers import Papers

    assert "mdcsrn" in BUILDERS["generator"] and set(PLUGIN_GROUPS.values()) == {"mrisr.generators",
                                                                                 "mrisr.discriminators"}
    assert {("papers", "stripes"), ("fetch", "hcp")} <= set(COMMANDS)
    assert all(hasattr(Papers, m) for m in ("items", "targets", "stripes_input", "stripes_arguments"))
