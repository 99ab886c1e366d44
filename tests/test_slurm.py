"""The workflow through the SLURM profile on a real single-node SLURM that the test starts on 127.0.0.1.

Needs Debian's slurm-wlm and munge (`make test` installs them where it may: CI, or MRISR_SYSTEM_PACKAGES=1) and
root; skipped otherwise. The daemons and Snakemake run in a private mount namespace whose /etc/slurm is a
temporary folder (the job-step plugin strips SLURM_CONF from the jobs' environment, so the file must be at its
system path): the machine's own /etc/slurm is never written, even if the test is killed.
"""

import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SYSTEM_SLURM = Path("/etc/slurm")
pytestmark = pytest.mark.workflow


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _conf(state: Path, munge_socket: Path) -> str:
    host = socket.gethostname().split(".")[0]
    return "\n".join([
        "ClusterName=mrisrtest", f"SlurmctldHost={host}(127.0.0.1)", "SlurmUser=root", "SlurmdUser=root",
        "AuthType=auth/munge", f"AuthInfo=socket={munge_socket}", "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none", "SchedulerType=sched/backfill", "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core_Memory", "ReturnToService=2", "MpiDefault=none",
        "JobAcctGatherType=jobacct_gather/none", "AccountingStorageType=accounting_storage/none",
        f"StateSaveLocation={state}/ctld", f"SlurmdSpoolDir={state}/spool",
        f"SlurmctldPidFile={state}/slurmctld.pid", f"SlurmdPidFile={state}/slurmd.pid",
        f"SlurmctldLogFile={state}/slurmctld.log", f"SlurmdLogFile={state}/slurmd.log",
        f"SlurmctldPort={_free_port()}", f"SlurmdPort={_free_port()}",
        # 16 CPUs and 2 GPUs whatever this machine has (config_overrides), so that a GPU training job's request can
        # be granted and run here; the GPUs are names only (no device files), the jobs compute on the CPU
        "SlurmdParameters=config_overrides", "GresTypes=gpu",
        # and memory enough for the workflow profile's requests as they stand (nothing enforces it: task/none)
        f"NodeName={host} NodeAddr=127.0.0.1 CPUs=16 Gres=gpu:2 RealMemory=128000 State=UNKNOWN",
        # a site's usual two: CPU jobs where no partition is named, GPU jobs only where asked for
        "PartitionName=cpu Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
        "PartitionName=gpu Nodes=ALL MaxTime=INFINITE State=UP", ""])


def _system_state() -> dict:
    """What this (the machine's) mount namespace sees of /etc/slurm: each file's sha256."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(SYSTEM_SLURM.glob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    missing = [tool for tool in ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "unshare", "nsenter")
               if not shutil.which(tool)]
    if missing or os.geteuid() != 0 or not SYSTEM_SLURM.is_dir():
        pytest.skip(f"needs root, /etc/slurm and {missing or 'the SLURM tools'}: `make test` installs Debian's "
                    "slurm-wlm and munge with MRISR_SYSTEM_PACKAGES=1 (CI sets it)")
    before = _system_state()
    state = tmp_path_factory.mktemp("slurm")
    munge = state / "munge"
    munge.mkdir(mode=0o700)
    (munge / "munge.key").write_bytes(os.urandom(128))
    (munge / "munge.key").chmod(0o400)
    for sub in ("ctld", "spool", "etc"):
        (state / sub).mkdir()
    (state / "etc" / "slurm.conf").write_text(_conf(state, munge / "munge.socket"))
    (state / "dev").mkdir()
    for i in range(2):
        (state / "dev" / f"gpu{i}").touch()
    (state / "etc" / "gres.conf").write_text(f"AutoDetect=off\nName=gpu File={state}/dev/gpu[0-1]\n")
    # a process that holds a private mount namespace; everything SLURM runs inside it (nsenter)
    holder = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sleep", "infinity"])
    while os.readlink(f"/proc/{holder.pid}/ns/mnt") == os.readlink("/proc/self/ns/mnt"):
        time.sleep(0.05)
    inside = ["nsenter", "-t", str(holder.pid), "-m"]
    subprocess.run([*inside, "mount", "--bind", str(state / "etc"), str(SYSTEM_SLURM)], check=True)
    subprocess.run([*inside, "munged", "--force", f"--socket={munge / 'munge.socket'}",
                    f"--key-file={munge / 'munge.key'}", f"--log-file={munge / 'munged.log'}",
                    f"--pid-file={munge / 'munged.pid'}", f"--seed-file={munge / 'munged.seed'}"], check=True)
    subprocess.run([*inside, "slurmctld"], check=True)
    subprocess.run([*inside, "slurmd"], check=True)
    for _ in range(60):
        idle = subprocess.run([*inside, "sinfo", "-h", "-o", "%t"], capture_output=True, text=True).stdout.strip()
        if idle == "idle":
            break
        time.sleep(0.5)
    assert idle == "idle", (state / "slurmctld.log").read_text()[-2000:]
    yield state, inside
    for pid in (state / "slurmd.pid", state / "slurmctld.pid", munge / "munged.pid"):
        if pid.exists():
            subprocess.run(["kill", pid.read_text().strip()])
    holder.kill()
    holder.wait()
    assert _system_state() == before


def _site_profile(folder: Path) -> Path:
    """The site profile template as a user fills it in: account and partitions set, nothing else changed. The
    workflow profile (per-rule CPUs, memory, time, signal) is not copied: Snakemake finds it beside the Snakefile."""
    shutil.copytree(ROOT / "workflow/profiles/slurm", folder)
    profile = yaml.safe_load((folder / "config.v8+.yaml").read_text())
    profile["default-resources"]["slurm_account"] = "lab"
    (folder / "config.v8+.yaml").write_text(yaml.safe_dump(profile))
    partitions = yaml.safe_load((folder / "partitions.yaml").read_text())["partitions"]
    renamed = {"cpu": partitions.pop("CHANGE_ME_CPU"), "gpu": partitions.pop("CHANGE_ME_GPU")}
    (folder / "partitions.yaml").write_text(yaml.safe_dump({"partitions": renamed}))
    return folder


def _snakemake_in(inside, workdir: Path, profile: Path, overlay: Path, *args) -> str:
    """Snakemake through ``profile`` on the test SLURM, verbose (the plugin logs each sbatch call); its output."""
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    cmd = [str(BIN / "snakemake"), "-s", str(ROOT / "Snakefile"), "--directory", str(workdir), "--verbose",
           "--profile", str(profile), "--retries", "0", "--slurm-status-command", "squeue",
           "--slurm-init-seconds-before-status-checks", "1", "--seconds-between-status-checks", "1",
           "--latency-wait", "5", "--jobs", "4", "--configfile", str(ROOT / "config.yaml"),
           str(ROOT / "tests/tiny.yaml"), str(overlay), *args]
    result = subprocess.run([*inside, "timeout", "-k", "10", "600", *cmd], capture_output=True, text=True, env=env)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    return result.stdout + result.stderr


def _sbatch_calls(said: str) -> dict[str, str]:
    """Each rule's sbatch options (the call up to the wrapped command), by the rule its --comment names."""
    calls = [call.split(" --wrap=")[0] for call in re.findall(r"sbatch call: (.*)", said)]
    return {rule: call for call in calls for rule in ("train", "super_resolve", "degrade")
            if f"--comment rule_{rule}_" in call}


def _option(call: str, flag: str) -> str | None:
    """The value sbatch gets for ``flag`` in a call (``--mem 64000``, ``-p 'gpu'``), unquoted."""
    found = re.search(rf"(?:^| ){re.escape(flag)}[ =]('[^']*'|\S+)", call)
    return found and found.group(1).strip("'")


def test_jobs_run_as_slurm_jobs_asking_for_their_gpus_cpus_and_warning_signal(slurm, tmp_path):
    """Through the site profile template (account and partitions filled in) and the workflow profile that Snakemake
    finds by itself: every submitted job is a SLURM job whose log names it; a training job asks for train.gpus GPUs
    (--gpus) with cpus_per_gpu CPUs each, its memory and time, SIGUSR1 before its time limit, on the GPU
    partition, and completes (train.gpus 2: the trainer's two data-parallel processes); GPU inference asks for one
    GPU and its own sizes, as --gres and no --gpus with slurm.gpu_request: gres; a CPU job asks for its rule's
    threads on the CPU partition. The machine's own /etc/slurm is unchanged while SLURM runs."""
    state, inside = slurm
    before = _system_state()
    workdir, profile = tmp_path / "wd", _site_profile(tmp_path / "profile")
    sizes = yaml.safe_load((ROOT / "workflow/profiles/default/config.v8+.yaml").read_text())["set-resources"]
    overlay = tmp_path / "gpus.yaml"
    targets = ["results/super_resolve/demo/nearest/esrgan/sub-01_T1w.nii.gz",
               "results/degrade/demo/nearest/sub-01_T1w.nii.gz"]
    # the fetched and prepared subjects are made here, outside SLURM: those jobs would only add minutes
    local = subprocess.run([str(BIN / "snakemake"), "-s", str(ROOT / "Snakefile"), "--directory", str(workdir),
                            "--cores", "2", "--configfile", str(ROOT / "config.yaml"), str(ROOT / "tests/tiny.yaml"),
                            "--until", "prepare", "--", *targets], capture_output=True, text=True, timeout=600,
                           env=dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}"))
    assert local.returncode == 0, local.stderr[-3000:]
    said = {}
    # first the training job and GPU inference with its model, as --gpus; then inference alone, as --gres
    for gpu_request, targets, again, checked in (
            ("gpu", targets, [], (("train", 2), ("super_resolve", 1))),
            ("gres", ["results/super_resolve/demo/nearest/trilinear/sub-01_T1w.nii.gz"],
             ["--forcerun", "results/super_resolve/demo/nearest/trilinear/sub-01_T1w.nii.gz"],
             (("super_resolve", 1),))):
        overlay.write_text(yaml.safe_dump({
            "train": {"gpus": 2, "batch_size": 2}, "slurm": {"gpu_request": gpu_request},
            "run_variants": ["trilinear", "esrgan"], "variants": {"esrgan": {"start": "scratch"}}}))
        said[gpu_request] = _snakemake_in(inside, workdir, profile, overlay, *again, "--", *targets)
        calls = _sbatch_calls(said[gpu_request])
        for rule, gpus in checked:
            call = calls[rule]
            asked, other = (f"--gpus={gpus}", "--gres") if gpu_request == "gpu" else (f"--gres=gpu:{gpus}", "--gpus")
            assert asked in call and other not in call and "--cpus-per-task" not in call, call
            assert _option(call, "--cpus-per-gpu") == str(sizes[rule]["cpus_per_gpu"]), call
            assert int(_option(call, "--mem")) >= sizes[rule]["mem_mb"], call  # the plugin adds its payload's
            assert (_option(call, "-t"), _option(call, "-p"), _option(call, "-A")) == (
                str(sizes[rule]["runtime"]), "gpu", "lab"), call
        assert all((workdir / target).is_file() for target in targets)
    assert "--signal=USR1@600" in _sbatch_calls(said["gpu"])["train"]
    assert "--signal" not in _sbatch_calls(said["gpu"])["super_resolve"]
    degrade = _sbatch_calls(said["gpu"])["degrade"]
    assert "--cpus-per-task=1" in degrade and not re.search(r"--gpus|--gres|--cpus-per-gpu", degrade), degrade
    assert (_option(degrade, "-p"), _option(degrade, "-A")) == ("cpu", "lab"), degrade
    submitted = set(re.findall(r"submitted with SLURM jobid (\d+)", "".join(said.values())))
    logs = {p: p.read_text() for rule in ("degrade", "train", "super_resolve")
            for p in (workdir / "results/logs" / rule).rglob("*.log")}
    remote = {p: re.search(r"SLURM job (\d+) on ", text) for p, text in logs.items()}
    assert len(remote) >= 4 and all(remote.values()), [str(p) for p, m in remote.items() if not m]
    assert {m.group(1) for m in remote.values()} <= submitted
    done = set(re.findall(r"JobId=(\d+) done", (state / "slurmctld.log").read_text()))
    assert {m.group(1) for m in remote.values()} <= done
    # the machine's own /etc/slurm, seen from outside the namespace while SLURM ran on the temporary one
    assert _system_state() == before
