"""How much faster compat tests a combination than a plain ``docker build`` does.

Measured in one run on the same base (local/debian-python:bookworm with libgomp1
added, so lightgbm imports):

  (a) plain: ``docker build --no-cache`` of ``FROM base; pip install <the pins>``,
      then the smoke suite in a container of it, per combination;
  (b) compat: per-combination wall time of a scan of ~10 combinations of the
      six-package stack, warm (after the first result: the steady state);
  (c) the smoke suite alone, exec'd in an already running container of a prepared
      environment (packages installed, bytecode compiled).

Prints medians and the ratios a/b (target >= 15) and b/c (target <= 1.3).

    python benchmarks/bench_scan.py [--combos 10] [--plain 3] [--jobs 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from compat.config import RunConfig
from compat.harness import make_pipeline
from compat.harness.docker_backend import DockerBackend
from compat.index.pypi import PyPIIndex
from compat.model import Combo, ComboResult
from compat.reporter import Reporter
from compat.resolve.candidates import CandidateSource, requested
from compat.resolve.resolver import Resolver
from compat.settings import NetworkSettings
from compat.smoke import SMOKE_DIR
from compat.targets.probe import probe_image
from compat.targets.target import Target

BASE = "local/debian-python:bookworm"
SIX = ("numpy", "scipy", "scikit-learn", "pandas", "matplotlib", "lightgbm")
# one package held back per variant gives distinct, resolvable combinations
VARIANTS: tuple[dict[str, str], ...] = (
    {},
    {"numpy": "==2.3.*"},
    {"pandas": "==2.3.*"},
    {"scikit-learn": "==1.8.*"},
    {"scipy": "==1.16.*"},
    {"matplotlib": "==3.10.*"},
    {"lightgbm": "==4.6.*"},
    {"numpy": "==2.2.*"},
    {"pandas": "==2.2.*"},
    {"scikit-learn": "==1.7.*"},
    {"scipy": "==1.15.*"},
    {"numpy": "==2.1.*", "pandas": "==2.2.*"},
)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def combos_for(target: Target, network: NetworkSettings, cache: Path, count: int) -> list[Combo]:
    out: list[Combo] = []
    with PyPIIndex(network, cache_dir=cache / "index") as index:
        resolver = Resolver(CandidateSource(index, target))
        for variant in VARIANTS:
            outcome = resolver.resolve([requested(n, variant.get(n, "")) for n in SIX])
            if isinstance(outcome, Combo) and outcome not in out:
                out.append(outcome)
            if len(out) == count:
                break
    return out


def docker(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=True
    )


def runner_args(combo: Combo) -> list[str]:
    args = ["/opt/compat-smoke/runner.py", "--site", "/venv/lib/python3.11/site-packages"]
    for name in combo.requested:
        args += ["--package", name]
    return args


def plain_build(base: str, combo: Combo, network: NetworkSettings, tag: str) -> float:
    """(a): build an image that pip-installs the pins, then run the smoke suite in it."""
    with tempfile.TemporaryDirectory() as ctx:
        context = Path(ctx)
        shutil.copytree(SMOKE_DIR, context / "smoke", ignore=shutil.ignore_patterns("__pycache__"))
        cert = ""
        if network.ca_bundle is not None:
            shutil.copy(network.ca_bundle, context / "ca.pem")
            cert = "COPY ca.pem /etc/compat-ca.pem\nENV PIP_CERT=/etc/compat-ca.pem\n"
        pins = " ".join(f"{p.name}=={p.version}" for p in combo.pins)
        (context / "Dockerfile").write_text(
            f"FROM {base}\n{cert}"
            f"ENV PIP_INDEX_URL={network.index_url}\n"
            "COPY smoke /opt/compat-smoke\n"
            f"RUN python3 -m venv /venv && /venv/bin/pip install --no-deps {pins}\n"
        )
        start = time.monotonic()
        docker("build", "--no-cache", "-q", "-t", tag, str(context))
        suite = subprocess.run(
            ["docker", "run", "--rm", "--network", "none", tag, "/venv/bin/python",
             *runner_args(combo)],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        elapsed = time.monotonic() - start
    if '"event": "done"' not in suite.stdout and '"event":"done"' not in suite.stdout:
        log(f"  warning: the plain run did not finish the suite: {suite.stderr[-300:]}")
    return elapsed


def suite_alone(tag: str, combo: Combo, repeats: int) -> list[float]:
    """(c): the smoke suite exec'd in a running container of the prepared image."""
    cid = docker("run", "-d", "--network", "none", tag, "sleep", "infinity").stdout.strip()
    try:
        # warm the page cache and write bytecode pip did not (the runner's own files)
        docker("exec", cid, "/venv/bin/python", *runner_args(combo))
        times = []
        for _ in range(repeats):
            start = time.monotonic()
            docker("exec", cid, "/venv/bin/python", *runner_args(combo))
            times.append(time.monotonic() - start)
        return times
    finally:
        docker("rm", "-f", cid)


def compat_scan(
    target: Target, combos: list[Combo], config: RunConfig, cache: Path, network: NetworkSettings
) -> tuple[list[ComboResult], list[float], float, dict[str, float]]:
    """(b): one scan; returns results, the time of each result, the total, and when
    each stage started."""
    stamps: list[float] = []
    stages: dict[str, float] = {}
    start = time.monotonic()

    def on_result(_: ComboResult) -> None:
        stamps.append(time.monotonic() - start)

    class Stages(Reporter):
        def stage_progress(self, stage: str, done: int, total: int) -> None:
            stages.setdefault(stage, round(time.monotonic() - start, 2))

    with make_pipeline(config, cache_dir=cache, network=network, reporter=Stages()) as backend:
        results = backend.run(target, combos, on_result=on_result, reporter=Stages())
    return results, stamps, time.monotonic() - start, stages


def steady(stamps: list[float]) -> float:
    """Seconds per combination after the first result."""
    return (stamps[-1] - stamps[0]) / max(1, len(stamps) - 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--combos", type=int, default=10)
    parser.add_argument("--plain", type=int, default=3, help="combinations built the plain way")
    parser.add_argument("--repeats", type=int, default=5, help="runs of the suite alone")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--cache", type=Path, help="compat cache (default: a fresh one)")
    args = parser.parse_args(argv)

    network = NetworkSettings.from_env(os.environ)
    work = Path(tempfile.mkdtemp(prefix="compat-bench-"))
    cache = args.cache or work / "cache"
    try:
        target = probe_image(BASE, name="bookworm", cache_dir=cache)
        combos = combos_for(target, network, cache, args.combos)
        log(f"{len(combos)} combinations of {', '.join(SIX)} on {target.describe()}")

        config = RunConfig(backend="docker", jobs=args.jobs)
        runtime = DockerBackend(config, cache_dir=cache, network=network)
        base_info = runtime.inspect(target)
        derived = runtime.with_system_packages(base_info, ["libgomp1"])
        runtime.close()
        assert derived is not None
        base = derived.image_id or derived.image
        log(f"base with libgomp1: {base[:19]}")
        based = dataclasses.replace(target, image=base, image_id=base)

        # (b): a scan from an empty cache (downloads, unpacking, bytecode included),
        # then the same scan again with everything prepared
        results, stamps, total, stages = compat_scan(based, combos, config, cache, network)
        verdicts = [r.verdict.value for r in results]
        log(f"compat scan, cold cache: {total:.1f}s for {len(combos)}: {verdicts}; {stages}")
        _, stamps_warm, total_warm, stages_warm = compat_scan(based, combos, config, cache, network)
        log(f"compat scan, warm cache: {total_warm:.1f}s; {stages_warm}")
        durations = [r.duration for r in results]

        # (a) and (c)
        plain: list[float] = []
        tags = []
        for i, combo in enumerate(combos[: args.plain]):
            tag = f"compat-bench/plain:{i}"
            tags.append(tag)
            seconds = plain_build(base, combo, network, tag)
            log(f"plain docker build + suite, combination {i + 1}: {seconds:.1f}s")
            plain.append(seconds)
        alone = suite_alone(tags[0], combos[0], args.repeats)
        log(f"suite alone: {', '.join(f'{t:.2f}' for t in alone)}")
        for tag in tags:
            subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, check=False)
    finally:
        if args.cache is None:
            shutil.rmtree(work, ignore_errors=True)

    a = statistics.median(plain)
    b = steady(stamps_warm)
    c = statistics.median(alone)
    report: dict[str, Any] = {
        "combinations": len(combos),
        "jobs": args.jobs,
        "a_plain_docker_build_median_s": round(a, 2),
        "a_all_s": [round(x, 1) for x in plain],
        "b_compat_per_combination_s": round(b, 2),
        "b_cold_scan_after_first_s": round(steady(stamps), 2),
        "compat_cold_scan_total_s": round(total, 1),
        "compat_warm_scan_total_s": round(total_warm, 1),
        "compat_one_run_median_s": round(statistics.median(durations), 2),
        "c_suite_alone_median_s": round(c, 2),
        "a_over_b": round(a / b, 1),
        "b_over_c": round(b / c, 2),
    }
    width = max(map(len, report))
    for key, value in report.items():
        print(f"{key:<{width}}  {value}")
    print(f"a/b = {a / b:.1f}x (target >= 15x); b/c = {b / c:.2f} (target <= 1.3)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
