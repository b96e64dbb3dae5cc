"""What reusing check outcomes by their inputs saves, on a real exhaustive matrix.

Runs ``compat scan`` (the command users run) on one image, each case in a results
database of its own, the wheel cache shared and warmed first (a ``--depth import``
scan), so that the cases differ only in what they run:

  (a) the exhaustive ``--last-minors N`` six-package matrix with ``--no-reuse``,
      the newest release of one package (``--held-back``) left out;
  (b) the same with reuse, from an empty database;
  (v) the same with reuse and ``--verify-reuse 1.0``, from an empty database:
      every check that could be reused runs anyway and is compared;
  (c) the whole ``--last-minors 3`` matrix (729 combinations) with reuse, from an
      empty database;
  (d) the nightly case: the matrix with that release, on (b)'s database: only the
      new combinations run.

For each: wall time, combinations run, check runs executed and reused, and
disagreements; for (b) also the least reuse could execute given what its checks
recorded (one run per distinct key and inputs; one per check and inputs, were
installed names not in the key), in check runs and in check-seconds. Goals:
(b) <= 1/5 of (a); (c) <= 15 minutes on 2 cores; (d) executes only checks that
import the new release; 0 disagreements.

    python benchmarks/bench_incremental.py [--last-minors 2] [--cases a,b,v,d,c]
        [--image local/debian-python:bookworm] [--held-back matplotlib] [-j 2]

Run it alone: the machine's load is what the times would measure otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
MATRIX = ROOT / "matrix" / "ml-stack.toml"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def compat(env: dict[str, str], *args: str) -> dict[str, Any]:
    """Run compat; its --json output."""
    done = subprocess.run(
        [sys.executable, "-m", "compat", *args, "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"compat {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def with_libgomp(base: str) -> str:
    """``base`` with libgomp1 installed (built once): lightgbm imports on it, so no
    case pays for a first run that finds the library missing, which a fresh results
    database would otherwise pay on every combination."""
    tag = "compat-bench/" + base.split("/")[-1].replace(":", "-") + "-libgomp1"
    found = subprocess.run(["docker", "image", "inspect", tag], capture_output=True, check=False)
    if found.returncode != 0:
        dockerfile = (
            f"FROM {base}\nUSER root\nRUN apt-get update && apt-get install -y "
            "--no-install-recommends libgomp1 && rm -rf /var/lib/apt/lists/*\n"
        )
        log(f"building {tag}")
        subprocess.run(
            ["docker", "build", "-q", "-t", tag, "-"], input=dockerfile, text=True, check=True
        )
    return tag


def write_matrix(path: Path, *, hold_back: tuple[str, str] | None = None) -> Path:
    """The six-package matrix, exhaustive; ``hold_back`` (name, version) excluded."""
    packages = tomllib.loads(MATRIX.read_text())["packages"]
    if hold_back is not None:
        name, version = hold_back
        packages[name] = f"{packages[name]},!={version}"
    lines = ['name = "bench-incremental"', 'strategy = "exhaustive"', "[packages]"]
    lines += [f'{name} = "{spec}"' for name, spec in packages.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def checks_of(db: Path, run_id: str, columns: str, where: str = "1") -> list[Any]:
    """``columns`` of each check (``c``) of one run that meets ``where``."""
    with sqlite3.connect(db) as conn:
        return conn.execute(
            f"SELECT {columns} FROM checks c JOIN results r ON r.id = c.result_id "
            f"WHERE r.run_id = ? AND {where}",
            (run_id,),
        ).fetchall()


def counted(db: Path, run_id: str) -> dict[str, int]:
    """Check runs of one run: executed (ran, inputs recorded), reused, all."""
    rows = checks_of(db, run_id, "c.inputs IS NOT NULL, c.reused_from IS NOT NULL")
    with sqlite3.connect(db) as conn:
        disagreements = conn.execute("SELECT count(*) FROM reuse_disagreements").fetchone()[0]
    return {
        "executed": sum(1 for has_inputs, reused in rows if has_inputs and not reused),
        "reused": sum(1 for _, reused in rows if reused),
        "checks": len(rows),
        "disagreements": int(disagreements),
    }


def floor(db: Path, run_id: str) -> dict[str, float]:
    """What reuse could at best save in a run, from what its checks recorded: the
    fewest check runs its keys allow (one per distinct key and inputs), and the
    fewest were installed names not in the key (one per check and inputs); each
    also in check-seconds (each check at its mean duration where it ran), beside
    those it executed and every check run in every combination, as with
    ``--no-reuse``."""
    rows = checks_of(
        db,
        run_id,
        "c.name, c.reuse_key, c.inputs, c.reused_from IS NULL, c.duration",
        "c.inputs IS NOT NULL",
    )
    ran: dict[str, list[float]] = {}
    for name, _key, _inputs, executed, duration in rows:
        if executed:
            ran.setdefault(name, []).append(duration)
    mean = {name: sum(d) / len(d) for name, d in ran.items()}
    by_key = {(name, key, inputs) for name, key, inputs, *_ in rows}
    by_inputs = {(name, inputs) for name, _key, inputs, *_ in rows}
    return {
        "by_key": len(by_key),
        "by_inputs": len(by_inputs),
        "executed_s": sum(d for *_, executed, d in rows if executed),
        "by_key_s": sum(mean.get(name, 0.0) for name, *_ in by_key),
        "by_inputs_s": sum(mean.get(name, 0.0) for name, _ in by_inputs),
        "all_s": sum(mean.get(name, 0.0) for name, *_ in rows),
    }


def executed_without(db: Path, run_id: str, name: str) -> int:
    """Check runs of the run that executed without importing ``name``."""
    rows = checks_of(db, run_id, "c.inputs", "c.inputs IS NOT NULL AND c.reused_from IS NULL")
    return sum(1 for (inputs,) in rows if name not in json.loads(inputs))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", default="local/debian-python:bookworm", help="a Debian base")
    parser.add_argument("--last-minors", type=int, default=2)
    parser.add_argument("--cases", default="a,b,v,d")
    parser.add_argument("--held-back", default="matplotlib", metavar="PACKAGE")
    parser.add_argument("-j", "--jobs", default="2")
    args = parser.parse_args()
    cases = set(args.cases.split(","))
    home = Path(tempfile.mkdtemp(prefix="bench-incremental-"))
    env = {**os.environ, "COMPAT_CACHE_DIR": str(home / "cache"), "COLUMNS": "200"}
    image = with_libgomp(args.image)
    common = ("--image", image, "-j", args.jobs)

    def scan(
        case: str, matrix: Path, db: Path, *options: str, minors: int = args.last_minors
    ) -> dict[str, Any]:
        own = {**env, "COMPAT_DB": f"sqlite:///{db}"}
        started = time.monotonic()
        data = compat(
            own, "scan", "--matrix", str(matrix), "--last-minors", str(minors), *common, *options
        )
        seconds = time.monotonic() - started
        row = {"case": case, "seconds": round(seconds, 1), "combinations": data["ran"]}
        row.update(counted(db, data["run"]))
        log(json.dumps(row))
        return {**row, "run": data["run"]}

    full = write_matrix(home / "full.toml")
    newest = newest_in_plan(env, full, image, args.last_minors, args.held_back)
    # (a), (b) and (v) scan the matrix without the newest release of one package, which
    # (d) then adds to (b)'s database, as a night does
    held = write_matrix(home / "held.toml", hold_back=(args.held_back, newest))
    log(f"warming the wheel cache ({home})")
    scan("warm", full, home / "warm.db", "--depth", "import")
    if "c" in cases:
        scan("warm-c", full, home / "warm-c.db", "--depth", "import", minors=3)

    rows = []
    if "a" in cases:
        rows.append(scan("a", held, home / "a.db", "--no-reuse"))
    if "b" in cases or "d" in cases:
        rows.append(scan("b", held, home / "b.db"))
    if "v" in cases:
        rows.append(scan("v", held, home / "v.db", "--verify-reuse", "1.0"))
    if "c" in cases:
        rows.append(scan("c", full, home / "c.db", minors=3))
    if "d" in cases:
        night = scan("d", full, home / "b.db")
        night["executed_without_new"] = executed_without(
            home / "b.db", night["run"], args.held_back
        )
        rows.append(night)

    print(f"{'case':<10}{'seconds':>9}{'combos':>8}{'executed':>10}{'reused':>8}{'disagree':>10}")
    for row in rows:
        print(
            f"{row['case']:<10}{row['seconds']:>9}{row['combinations']:>8}"
            f"{row['executed']:>10}{row['reused']:>8}{row['disagreements']:>10}"
        )
    by_case = {row["case"]: row for row in rows}
    if "a" in by_case and "b" in by_case:
        print(f"(b)/(a) wall time: {by_case['b']['seconds'] / by_case['a']['seconds']:.2f}")
    if "b" in by_case:
        best = floor(home / "b.db", by_case["b"]["run"])
        print(
            f"(b) check runs: {by_case['b']['executed']} executed, the fewest its keys allow "
            f"{best['by_key']:.0f}, the fewest by inputs alone {best['by_inputs']:.0f}; "
            f"in check-seconds of every check in every combination ({best['all_s']:.0f}): "
            f"{best['executed_s'] / best['all_s']:.2f}, {best['by_key_s'] / best['all_s']:.2f}, "
            f"{best['by_inputs_s'] / best['all_s']:.2f}"
        )
    if "d" in by_case:
        print(
            f"(d) checks executed without importing {args.held_back}: "
            f"{by_case['d']['executed_without_new']}"
        )
    return 0


def newest_in_plan(env: dict[str, str], matrix: Path, image: str, minors: int, name: str) -> str:
    """The newest version of ``name`` the matrix plans: the release held back in (d)."""
    plan = compat(
        env, "plan", "--matrix", str(matrix), "--image", image, "--last-minors", str(minors)
    )
    return str(max(Version(v) for v in plan["versions"][name]))


if __name__ == "__main__":
    sys.exit(main())
