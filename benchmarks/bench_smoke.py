"""Time of the built-in smoke suite per combination, on one core.

Installs a stack (the latest six packages by default) once into an image of the
base (``local/debian-python:bookworm``, libgomp1 added so lightgbm imports;
bytecode compiled, as the harness has it warm), then runs the suite of this
tree (mounted read-only, as the harness mounts it) N times in a container
limited to one CPU and prints each run, the median, and the slowest checks.
Target: median <= 15 s per combination.

    python benchmarks/bench_smoke.py [--runs 5] [--image local/debian-python:bookworm]
        [--pin numpy==2.0.2 ...]
    python benchmarks/bench_smoke.py --venv /tmp/x [--runs 5]   # a host venv, pinned to CPU 0

The image is kept (tagged by base and pins) so a second run starts at once.
"""

from __future__ import annotations

import argparse
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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from compat.smoke import SMOKE_DIR

BASE = "local/debian-python:bookworm"
SIX = ("numpy", "scipy", "pandas", "matplotlib", "scikit-learn", "lightgbm")
TARGET_SECONDS = 15.0
CPU_TIMES: list[float] = []  # per run, host venv only
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


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


def run_docker(tag: str, runs: int, cpus: str) -> list[tuple[float, str]]:
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
        return [_timed(command) for _ in range(runs + 1)][1:]  # the first warms the page cache
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)


def run_venv(venv: Path, runs: int) -> list[tuple[float, str]]:
    python = str(venv / "bin" / "python")
    command = runner_command(python, str(SMOKE_DIR), None)
    if shutil.which("taskset"):
        command = ["taskset", "-c", "0", *command]
    return [_timed(command) for _ in range(runs + 1)][1:]


def _timed(command: list[str]) -> tuple[float, str]:
    """Wall time and output of one run; its CPU time goes to CPU_TIMES."""
    start = time.monotonic()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    elapsed = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU time of the runner and its checks (host venv only: docker exec's CPU is the
    # container's). On a busy machine this, not the wall time, is what one core costs.
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if cpu > 1:
        CPU_TIMES.append(cpu)
        log(f"  cpu {cpu:.2f} s, wall {elapsed:.2f} s")
    if proc.returncode != 0:
        log(f"runner exited {proc.returncode}: {proc.stderr[-500:]}")
    return elapsed, proc.stdout


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

    walls = [wall for wall, _ in results]
    per_check: dict[str, list[float]] = {}
    cpu_per_check: dict[str, list[float]] = {}
    suites = []
    counts: dict[str, int] = {}
    for _, stdout in results:
        done, durations, cpus, counts = parse(stdout)
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
    median = statistics.median(walls)
    print(f"median per combination: {median:.2f} s (target <= {TARGET_SECONDS:g} s)")
    if CPU_TIMES:
        # What one idle core would take; the wall time counts other load too.
        print(f"median CPU time per combination: {statistics.median(CPU_TIMES):.2f} s")
    return 0 if median <= TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
