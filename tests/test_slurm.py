"""The workflow through the SLURM profile on a real single-node SLURM that the test starts on 127.0.0.1.

Needs Debian's slurm-wlm and munge (`make test` installs them) and root: it writes /etc/slurm/slurm.conf
(restored afterwards), because the job-step plugin strips SLURM_CONF from the jobs' environment.
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")
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
        f"NodeName={host} NodeAddr=127.0.0.1 CPUs={os.cpu_count()} RealMemory=4000 State=UNKNOWN",
        "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP", ""])


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    missing = [tool for tool in ("munged", "slurmctld", "slurmd", "sbatch", "squeue") if not shutil.which(tool)]
    assert not missing, f"{missing} missing: `make test` installs Debian's slurm-wlm and munge"
    state = tmp_path_factory.mktemp("slurm")
    munge = state / "munge"
    munge.mkdir(mode=0o700)
    (munge / "munge.key").write_bytes(os.urandom(128))
    (munge / "munge.key").chmod(0o400)
    for sub in ("ctld", "spool"):
        (state / sub).mkdir()
    backup = SYSTEM_CONF.read_bytes() if SYSTEM_CONF.exists() else None
    SYSTEM_CONF.parent.mkdir(parents=True, exist_ok=True)
    SYSTEM_CONF.write_text(_conf(state, munge / "munge.socket"))
    subprocess.run(["munged", "--force", f"--socket={munge / 'munge.socket'}", f"--key-file={munge / 'munge.key'}",
                    f"--log-file={munge / 'munged.log'}", f"--pid-file={munge / 'munged.pid'}",
                    f"--seed-file={munge / 'munged.seed'}"], check=True)
    subprocess.run(["slurmctld"], check=True)
    subprocess.run(["slurmd"], check=True)
    for _ in range(60):
        idle = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True).stdout.strip()
        if idle == "idle":
            break
        time.sleep(0.5)
    assert idle == "idle", (state / "slurmctld.log").read_text()[-2000:]
    yield state
    for pid in (state / "slurmd.pid", state / "slurmctld.pid", munge / "munged.pid"):
        if pid.exists():
            subprocess.run(["kill", pid.read_text().strip()])
    if backup is None:
        SYSTEM_CONF.unlink()
    else:
        SYSTEM_CONF.write_bytes(backup)


def test_jobs_run_through_the_profile_as_slurm_jobs(slurm, tmp_path):
    workdir = tmp_path / "wd"
    targets = ["results/fetch/demo/sub-02/sub-02_T1w.nii.gz", "results/degrade/demo/nearest/sub-01_T1w.nii.gz"]
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    cmd = [str(BIN / "snakemake"), "-s", str(ROOT / "Snakefile"), "--directory", str(workdir),
           "--profile", str(ROOT / "workflow/profiles/slurm"),
           # no accounting daemon here: squeue, polled every second
           "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "1",
           "--seconds-between-status-checks", "1", "--latency-wait", "5", "--jobs", "4",
           # what a user sets once in the profile: account, partition, sizes that fit this machine
           "--default-resources", "slurm_account=lab", "slurm_partition=debug", "cpus_per_task=1", "mem_mb=1000",
           "runtime=30", "--configfile", str(ROOT / "config.yaml"), str(ROOT / "tests/tiny.yaml"), "--", *targets]
    result = subprocess.run(["timeout", "-k", "10", "600", *cmd], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-4000:]
    assert all((workdir / target).is_file() for target in targets)
    submitted = set(re.findall(r"submitted with SLURM jobid (\d+)", result.stdout + result.stderr))
    logs = {p: p.read_text() for p in (workdir / "results/logs").rglob("*.log")}
    remote = {p: re.search(r"SLURM job (\d+) on ", text) for p, text in logs.items()}
    assert len(remote) == 4 and all(remote.values()), [str(p) for p, m in remote.items() if not m]
    recorded = {m.group(1) for m in remote.values()}
    assert len(recorded) == len(remote) and recorded <= submitted
    done = set(re.findall(r"JobId=(\d+) done", (slurm / "slurmctld.log").read_text()))
    assert recorded <= done
