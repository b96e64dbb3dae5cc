"""Resolution speed: compat's resolver against `uv pip compile --offline`.

Both start warm: the first pass fills compat's index cache and uv's cache from the
network, then the timed passes run offline. The same 100 top-level pin sets of the
six-package stack (newest patch per minor, taken from the exhaustive product in
order, feasible ones only) are resolved for Python 3.12 on x86_64 Linux. compat
resolves them in one fresh process (interpreter start-up, imports and cache loading
included); uv runs once per set, as a user scripting it would.

    python benchmarks/bench_resolve.py [--count 100] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

RESOLVE_SCRIPT = """
import json, sys, time
t0 = time.perf_counter()
from pathlib import Path
from compat.index.pypi import PyPIIndex
from compat.resolve import CandidateSource, Resolver, requested
from compat.targets.profiles import target_from_profile
from compat.model import Combo
sets = json.loads(Path(sys.argv[1]).read_text())
target = target_from_profile("debian-slim", python="3.12")
with PyPIIndex(cache_dir=Path(sys.argv[2]), offline=sys.argv[3] == "offline") as index:
    resolver = Resolver(CandidateSource(index, target))
    ok = 0
    for pins in sets:
        outcome = resolver.resolve([requested(n, "==" + v) for n, v in pins])
        ok += isinstance(outcome, Combo)
print(json.dumps({"ok": ok, "seconds": time.perf_counter() - t0}))
"""


def pin_sets(count: int, cache: Path) -> list[list[tuple[str, str]]]:
    """Feasible top-level pin sets, found with compat's own planner (exhaustive)."""
    from compat.index.pypi import PyPIIndex
    from compat.matrix import load_matrix
    from compat.resolve.candidates import CandidateSource
    from compat.resolve.planner import Planner
    from compat.targets.profiles import target_from_profile

    matrix = load_matrix(ROOT / "matrix" / "ml-stack.toml")
    target = target_from_profile("debian-slim", python="3.12")
    with PyPIIndex(cache_dir=cache) as index:
        plan = Planner(CandidateSource(index, target, matrix.build), matrix).plan(
            target, "exhaustive", last_minors=3
        )
    sets = [[(str(n), str(c.version_of(n))) for n in c.requested] for c in plan.combos]
    if len(sets) < count:
        raise SystemExit(f"only {len(sets)} feasible combinations; lower --count")
    return sets[:count]


def run_compat(sets_file: Path, cache: Path, mode: str) -> tuple[float, int]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", RESOLVE_SCRIPT, str(sets_file), str(cache), mode],
        check=True,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    return wall, json.loads(done.stdout)["ok"]


def run_uv(sets: list[list[tuple[str, str]]], work: Path, offline: bool) -> float:
    uv = shutil.which("uv") or sys.exit("uv is not installed: pip install uv")
    env = {**os.environ, "UV_CACHE_DIR": str(work / "uv-cache")}
    start = time.perf_counter()
    for i, pins in enumerate(sets):
        req = work / f"req{i}.in"
        req.write_text("".join(f"{n}=={v}\n" for n, v in pins))
        subprocess.run(
            [
                uv,
                "pip",
                "compile",
                "--quiet",
                "--no-header",
                "--python-version",
                "3.12",
                "--python-platform",
                "x86_64-unknown-linux-gnu",
                *(["--offline"] if offline else []),
                str(req),
                "-o",
                str(work / f"req{i}.txt"),
            ],
            check=True,
            env=env,
            capture_output=True,
        )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="compat-bench-") as tmp:
        work = Path(tmp)
        cache = work / "compat-cache"
        sets = pin_sets(args.count, cache)
        sets_file = work / "sets.json"
        sets_file.write_text(json.dumps(sets))
        print(f"{len(sets)} pin sets of {len(sets[0])} packages; warming both caches…")
        run_compat(sets_file, cache, "online")
        run_uv(sets, work, offline=False)
        compat_times, uv_times = [], []
        for _ in range(args.repeat):
            seconds, ok = run_compat(sets_file, cache, "offline")
            compat_times.append(seconds)
            uv_times.append(run_uv(sets, work, offline=True))
        c, u = statistics.median(compat_times), statistics.median(uv_times)
        print(
            f"compat resolver, {len(sets)} combinations in one process: median {c:.2f} s "
            f"({ok} resolved)  runs: {', '.join(f'{t:.2f}' for t in compat_times)}"
        )
        print(
            f"uv pip compile --offline x {len(sets)}:                median {u:.2f} s  "
            f"runs: {', '.join(f'{t:.2f}' for t in uv_times)}"
        )
        print(f"ratio uv / compat: {u / c:.1f}x (target: at least 5x)")


if __name__ == "__main__":
    main()
