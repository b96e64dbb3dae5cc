"""How long the deep tier takes on the latest six-package stack on bookworm.

Runs ``compat check numpy scipy pandas matplotlib scikit-learn lightgbm --depth
deep --add-system-deps --image local/debian-python:bookworm --json`` twice
against one fresh results database:

  cold: no baseline outcomes cached (the install store and wheelhouse may be
        warm from earlier runs: the deep tier's own cost is what is measured);
  warm: the same again, every baseline outcome now in the database.

For each run it prints the wall time, the verdict, and per dependent what the
``deep:<dependent>`` summary check says: tests run, regressions, and the failing
tests discarded as not attributed or flaky. Targets on 2 cores: cold <= 10 min,
warm <= 3 min.

    python benchmarks/bench_deep.py [--image REF] [--keep DIR] [PINS...]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

LATEST = ("numpy", "scipy", "pandas", "matplotlib", "scikit-learn", "lightgbm")
_SUMMARY = re.compile(
    r"(?P<tests>\d+) tests in (?P<modules>\d+) modules; (?P<regressions>\d+) regressions, "
    r"(?P<unattributed>\d+) not attributed, (?P<flaky>\d+) flaky"
)


def run_check(pins: list[str], image: str, db: Path) -> tuple[float, dict[str, Any], str]:
    argv = [
        sys.executable,
        "-m",
        "compat",
        "--db",
        f"sqlite:///{db}",
        "check",
        *pins,
        "--depth",
        "deep",
        "--add-system-deps",
        "--image",
        image,
        "--json",
    ]
    started = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    try:
        data: dict[str, Any] = json.loads(done.stdout)
    except ValueError:
        data = {"verdict": f"no JSON (exit {done.returncode})", "checks": []}
    return elapsed, data, done.stderr


def summaries(data: dict[str, Any]) -> list[tuple[str, str, dict[str, int] | None]]:
    """(check, its first line, parsed counts) of each ``deep:<dependent>`` summary."""
    found = []
    for check in data.get("checks", ()):
        name = check["name"]
        if (name.startswith("deep:") and name.count(":") == 1) or name == "deep":
            text = (check.get("log") or check.get("error") or "").splitlines()
            first = text[0] if text else ""
            match = _SUMMARY.search(first)
            counts = {k: int(v) for k, v in match.groupdict().items()} if match else None
            found.append((name, check.get("error") or first, counts))
    return found


def report(label: str, elapsed: float, data: dict[str, Any]) -> dict[str, int]:
    print(f"{label}: {elapsed / 60:.1f} min, verdict {data.get('verdict')}")
    if data.get("failed_check"):
        print(f"  failed check: {data['failed_check']}: {data.get('error')}")
    totals = {"tests": 0, "regressions": 0, "unattributed": 0, "flaky": 0}
    for name, line, counts in summaries(data):
        print(f"  {name}: {line}")
        for key in totals:
            totals[key] += (counts or {}).get(key, 0)
    print(
        f"  total: {totals['tests']} tests, {totals['regressions']} regressions, "
        f"{totals['unattributed']} not attributed and {totals['flaky']} flaky discarded"
    )
    return totals


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pins", nargs="*", default=list(LATEST))
    parser.add_argument("--image", default="local/debian-python:bookworm")
    parser.add_argument("--keep", type=Path, help="keep the results database in DIR")
    args = parser.parse_args()
    where = args.keep or Path(tempfile.mkdtemp(prefix="bench-deep-"))
    where.mkdir(parents=True, exist_ok=True)
    db = where / "results.db"
    db.unlink(missing_ok=True)
    for label in ("cold", "warm"):
        elapsed, data, stderr = run_check(args.pins, args.image, db)
        report(label, elapsed, data)
        if not data.get("checks"):
            print(stderr[-2000:])
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
