"""Time of the built-in smoke suite per combination, on one core.

Installs a stack (the latest six packages by default) once into an image of the
base (``local/debian-python:bookworm``, libgomp1 added so lightgbm imports;
bytecode compiled, as the harness has it warm), then runs the suite of this
tree (mounted read-only, as the harness mounts it) N times in a container
limited to one CPU and prints each run, the median, and the slowest checks.
Target: median CPU time <= 15 s per combination.

    python benchmarks/bench_smoke.py [--runs 5] [--image local/debian-python:bookworm]
        [--pin numpy==2.0.2 ...]
    python benchmarks/bench_smoke.py --venv /tmp/x [--runs 5]   # a host venv, pinned to CPU 0

The image is kept (tagged by base and pins) so a second run starts at once.
CPU time is the runs' cgroup's (the container's, or one made for a host venv's
runs: cgroup v1 cpuacct or v2 cpu.stat), so it counts every process a run starts,
those that outlive their parent too (loky's workers); where no cgroup can be made,
the runner's children as the kernel reaps them, which misses those.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from compat.smoke import SMOKE_DIR

BASE = "local/debian-python:bookworm"
SIX = ("numpy", "scipy", "pandas", "matplotlib", "scikit-learn", "lightgbm")
TARGET_SECONDS = 15.0
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
CGROUP_ROOT = Path("/sys/fs/cgroup")
SETTLE_SECONDS = 30.0  # for what a run left running to end, before its CPU is read


class CpuGroup:
    """A cgroup's CPU time and processes: v1 (``cpuacct.usage``, nanoseconds) or v2
    (``cpu.stat``'s ``usage_usec``)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def seconds(self) -> float:
        v1 = self.path / "cpuacct.usage"
        if v1.exists():
            return int(v1.read_text()) / 1e9
        stat = dict(line.split() for line in (self.path / "cpu.stat").read_text().splitlines())
        return int(stat["usage_usec"]) / 1e6

    def procs(self) -> set[int]:
        return {int(pid) for pid in (self.path / "cgroup.procs").read_text().split()}

    def settle(self, keep: set[int]) -> None:
        """Wait (a while) until only ``keep`` is left running in it."""
        deadline = time.monotonic() + SETTLE_SECONDS
        while self.procs() - keep and time.monotonic() < deadline:
            time.sleep(0.1)


@contextlib.contextmanager
def own_group() -> Iterator[CpuGroup | None]:
    """A cgroup of its own for a host venv's runs (root only), removed after."""
    for parent in (CGROUP_ROOT / "cpuacct", CGROUP_ROOT):
        path = parent / f"compat-bench-smoke-{os.getpid()}"
        try:
            path.mkdir()
        except OSError:
            continue
        try:
            yield CpuGroup(path)
        finally:
            CpuGroup(path).settle(set())
            with contextlib.suppress(OSError):
                path.rmdir()
        return
    yield None


def container_group(name: str) -> CpuGroup | None:
    """The cgroup Docker made for a container (cgroupfs or systemd driver, v1 or v2)."""
    found = subprocess.run(
        ["docker", "inspect", "-f", "{{.Id}}", name], capture_output=True, text=True, check=False
    )
    cid = found.stdout.strip()
    for path in (
        CGROUP_ROOT / "cpuacct" / "docker" / cid,
        CGROUP_ROOT / "cpuacct" / "system.slice" / f"docker-{cid}.scope",
        CGROUP_ROOT / "system.slice" / f"docker-{cid}.scope",
        CGROUP_ROOT / "docker" / cid,
    ):
        if cid and path.is_dir():
            return CpuGroup(path)
    return None


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def prepared_image(base: str, pins: Sequence[str]) -> str:
    """An image of ``base`` with ``pins`` installed in /venv, bytecode compiled."""
    digest = hashlib.sha256(f"{base}\n{' '.join(sorted(pins))}".encode()).hexdigest()[:12]
    tag = f"compat-bench/smoke:{digest}"
    found = subprocess.run(["docker", "image", "inspect", tag], capture_output=True, check=False)
    if found.returncode == 0:
        return tag
    with tempfile.TemporaryDirectory() as ctx:
        context = Path(ctx)
        cert = ""
        ca = Path(os.environ.get("SSL_CERT_FILE") or CA_BUNDLE)
        if ca.is_file():
            shutil.copy(ca, context / "ca.pem")
            cert = "COPY ca.pem /etc/compat-ca.pem\nENV PIP_CERT=/etc/compat-ca.pem\n"
        (context / "Dockerfile").write_text(
            f"FROM {base}\nUSER root\n{cert}"
            # lightgbm needs libgomp.so.1; without it its checks would be skipped
            "RUN (apt-get update && apt-get install -y --no-install-recommends libgomp1"
            " && rm -rf /var/lib/apt/lists/*) || true\n"
            f"RUN python3 -m venv /venv && /venv/bin/pip install -q {' '.join(pins)}"
            " && /venv/bin/python -m compileall -q /venv >/dev/null || true\n"
        )
        log(f"building {tag} with {' '.join(pins)} ...")
        subprocess.run(["docker", "build", "-q", "-t", tag, str(context)], check=True)
    return tag


def runner_command(python: str, smoke_dir: str, site: str | None) -> list[str]:
    command = [python, f"{smoke_dir}/runner.py"]
    if site:
        command += ["--site", site]
    return command


def parse(
    stdout: str,
) -> tuple[dict[str, Any], dict[str, float], dict[str, float], dict[str, int]]:
    """The done event, each check's duration and CPU time, and the verdict counts."""
    done: dict[str, Any] = {}
    durations: dict[str, float] = {}
    cpus: dict[str, float] = {}
    for line in stdout.splitlines():
        event = json.loads(line)
        if event["event"] == "result":
            durations[event["check"]] = float(event["duration"])
            if event.get("cpu") is not None:
                cpus[event["check"]] = float(event["cpu"])
        elif event["event"] == "done":
            done = event
    counts = {k: v for k, v in done.get("counts", {}).items() if v}
    return done, durations, cpus, counts


def run_docker(tag: str, runs: int, cpus: str) -> list[Run]:
    name = f"compat-bench-smoke-{os.getpid()}"
    subprocess.run(
        ["docker", "run", "-d", "--rm", "--name", name, "--network", "none", "--cpus", cpus,
         "-v", f"{SMOKE_DIR}:/opt/compat-smoke:ro", tag, "sleep", "infinity"],
        check=True, capture_output=True,
    )  # fmt: skip
    try:
        command = [
            "docker",
            "exec",
            name,
            *runner_command("/venv/bin/python", "/opt/compat-smoke", None),
        ]
        group = container_group(name)
        return [_timed(command, group) for _ in range(runs + 1)][1:]  # the first warms the cache
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)


def run_venv(venv: Path, runs: int) -> list[Run]:
    python = str(venv / "bin" / "python")
    command = runner_command(python, str(SMOKE_DIR), None)
    if shutil.which("taskset"):
        command = ["taskset", "-c", "0", *command]
    with own_group() as group:
        if group is not None:  # the run joins it before it starts
            join = f'echo $$ > "{group.path / "cgroup.procs"}" && exec "$@"'
            command = ["sh", "-c", join, "sh", *command]
        return [_timed(command, group) for _ in range(runs + 1)][1:]


@dataclasses.dataclass(frozen=True)
class Run:
    wall: float
    cpu: float | None  # None: docker exec without the container's cgroup
    stdout: str


def _timed(command: list[str], group: CpuGroup | None) -> Run:
    """One run: its wall time, CPU time and output."""
    kept = group.procs() if group is not None else set()
    before = group.seconds() if group is not None else 0.0
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    proc = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    elapsed = time.monotonic() - start
    if group is not None:
        group.settle(kept)
        cpu: float | None = group.seconds() - before
    elif command[0] != "docker":
        # the runner's children as the kernel reaps them: not what outlives its parent
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - reaped.ru_utime) + (after.ru_stime - reaped.ru_stime)
    else:
        cpu = None
    log(
        f"  cpu {cpu:.2f} s, wall {elapsed:.2f} s" if cpu is not None else f"  wall {elapsed:.2f} s"
    )
    if proc.returncode != 0:
        log(f"runner exited {proc.returncode}: {proc.stderr[-500:]}")
    return Run(elapsed, cpu, proc.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--image", default=BASE, help="base image (Docker)")
    parser.add_argument("--pin", action="append", default=[], help="pins (default: latest six)")
    parser.add_argument("--cpus", default="1", help="CPU limit of the container")
    parser.add_argument("--venv", type=Path, help="run in this host venv instead of Docker")
    args = parser.parse_args(argv)
    # Killed (timeout, Ctrl-C): still remove the container in the finally below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    if args.venv:
        where = f"venv {args.venv} (CPU 0)"
        results = run_venv(args.venv, args.runs)
    else:
        pins = args.pin or list(SIX)
        tag = prepared_image(args.image, pins)
        where = f"{args.image} ({tag}, --cpus {args.cpus})"
        results = run_docker(tag, args.runs, args.cpus)

    walls = [run.wall for run in results]
    cpu_times = [run.cpu for run in results if run.cpu is not None]
    per_check: dict[str, list[float]] = {}
    cpu_per_check: dict[str, list[float]] = {}
    suites = []
    counts: dict[str, int] = {}
    for run in results:
        done, durations, cpus, counts = parse(run.stdout)
        suites.append(float(done.get("duration", 0.0)))
        for check, seconds in durations.items():
            per_check.setdefault(check, []).append(seconds)
        for check, seconds in cpus.items():
            cpu_per_check.setdefault(check, []).append(seconds)
    slowest = sorted(((statistics.median(v), k) for k, v in per_check.items()), reverse=True)
    costliest = sorted(((statistics.median(v), k) for k, v in cpu_per_check.items()), reverse=True)
    print(f"smoke suite on {where}, {len(results)} runs")
    print(f"verdicts of the last run: {counts}")
    print("wall per run (s): " + ", ".join(f"{w:.2f}" for w in walls))
    print("suite per run (runner's own clock, s): " + ", ".join(f"{s:.2f}" for s in suites))
    print("slowest checks (median s): " + ", ".join(f"{k} {m:.2f}" for m, k in slowest[:8]))
    if costliest:
        # the checks' own processes (and what they waited for): not the zygotes'
        # imports, not the runner
        total = sum(m for m, _ in costliest)
        print(
            f"CPU of the checks' own processes (median s): {total:.2f} in all; "
            + ", ".join(f"{k} {m:.2f}" for m, k in costliest[:12])
        )
    print(f"median wall time per combination: {statistics.median(walls):.2f} s")
    if not cpu_times:
        return 0 if statistics.median(walls) <= TARGET_SECONDS else 1
    # What one idle core would take; the wall time counts other load too.
    median = statistics.median(cpu_times)
    print("CPU per run (s): " + ", ".join(f"{c:.2f}" for c in cpu_times))
    print(f"median CPU time per combination: {median:.2f} s (target <= {TARGET_SECONDS:g} s)")
    return 0 if median <= TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
