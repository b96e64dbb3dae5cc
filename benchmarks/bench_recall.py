"""Recall of compat's verdicts on a public corpus of known breaks.

Runs every case of ``tests/data/known-breaks.toml`` (a combination upstream says
is broken) and its passing neighbour (the same pins with the one changed package
at a working release) through ``compat check <pins> --force --json`` and prints:

  - recall: failing cases flagged / total, overall and per package pair;
  - false alarms: passing neighbours that compat calls broken;
  - a per-case table with the verdict and the check(s) that flagged it.

A case counts as flagged when compat's verdict is one of import-error,
runtime-error, crash or timeout; any other outcome (install-failed, a harness
error) is reported as "not run", never as a detection or a false alarm.

The cases measure the suite; they are not a list of calls for it to make.

    python benchmarks/bench_recall.py                      # --backend local
    python benchmarks/bench_recall.py --docker             # local/debian-python:bookworm
    python benchmarks/bench_recall.py -k numpy2 -j 2 --depth deep
    python benchmarks/bench_recall.py --beyond-six         # cases with other packages
    python benchmarks/bench_recall.py --verify             # reproduce the corpus itself

Results are cached in a JSON file keyed by backend, image, depth, pins and a hash
of the smoke suite's sources, so a rerun only runs what changed. ``--verify``
does not use compat: it installs each pin set into a uv virtual environment and
runs the case's own ``reproduce`` snippet, to check that every case still
fails as described and every neighbour passes.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import time
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):  # run as a script: import benchmarks.* from this tree
    sys.path.insert(0, str(REPO))

from benchmarks.calibrate import EXCEPTIONS, KnownBreak, load_known_breaks  # noqa: E402
from compat.smoke.dists import import_names  # noqa: E402

CORPUS = REPO / "tests" / "data" / "known-breaks.toml"
SIX = ("numpy", "scipy", "pandas", "matplotlib", "scikit-learn", "lightgbm")
VERDICTS = ("import-error", "runtime-error", "crash")
# Verdicts that say "this combination is broken"; install-failed and the like
# mean compat never got to judge it.
FLAGGED = frozenset({"import-error", "runtime-error", "crash", "timeout"})
DOCKER_IMAGE = "local/debian-python:bookworm"
# The oldest releases with CPython 3.11 manylinux x86_64 wheels.
FLOORS = {
    "numpy": "1.23.2",
    "scipy": "1.9.2",
    "pandas": "1.5.0",
    "matplotlib": "3.6.0",
    "scikit-learn": "1.1.3",
}
PIN = re.compile(r"^(?P<name>[a-z0-9][a-z0-9._-]*)==(?P<version>[0-9][0-9a-z.+!-]*)$")


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Case:
    id: str
    pair: tuple[str, str]
    verdict: str
    pins: tuple[str, ...]
    neighbour: tuple[str, ...] | None
    link: str
    source: str
    description: str
    reproduce: str
    match: str

    @property
    def changed(self) -> str | None:
        """The one package whose version differs in the neighbour."""
        if self.neighbour is None:
            return None
        before, after = pin_map(self.pins), pin_map(self.neighbour)
        (name,) = (name for name in before if before[name] != after[name])
        return name


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Outcome:
    verdict: str
    flagged_by: tuple[str, ...]
    error: str | None
    seconds: float
    # Checks that broke on their own account (check-error): listed, never a flag.
    check_errors: tuple[str, ...] = ()
    # Every pin compat ran, transitive ones included (what explains a break).
    versions: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def flagged(self) -> bool:
        return self.verdict in FLAGGED


def pin_map(pins: Iterable[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pin in pins:
        match = PIN.match(pin)
        if match is None:
            raise ValueError(f"not an exact pin: {pin!r}")
        out[match["name"]] = match["version"]
    return out


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


def load_corpus(path: Path = CORPUS) -> list[Case]:
    """Parse and validate the corpus; any malformed case is a ValueError."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    cases: list[Case] = []
    seen: set[str] = set()
    for raw in data.get("case", []):
        case = _parse_case(raw)
        if case.id in seen:
            raise ValueError(f"duplicate case id {case.id!r}")
        seen.add(case.id)
        cases.append(case)
    return cases


def _parse_case(raw: Mapping[str, Any]) -> Case:
    ident = str(raw.get("id", ""))
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]*", ident):
        raise ValueError(f"bad case id {ident!r}")

    def fail(why: str) -> ValueError:
        return ValueError(f"case {ident}: {why}")

    pair = tuple(raw.get("pair", ()))
    if len(pair) != 2 or len(set(pair)) != 2 or any(canonicalize_name(n) != n for n in pair):
        raise fail(f"pair must name two distributions by their canonical names, got {pair}")
    verdict = raw.get("verdict")
    if verdict not in VERDICTS:
        raise fail(f"verdict must be one of {VERDICTS}")
    pins = tuple(raw.get("pins", ()))
    versions = pin_map(pins)
    if len(versions) != len(pins):
        raise fail("a package is pinned twice")
    if not set(pair) <= set(versions):
        raise fail("both packages of the pair must be pinned")
    for name, floor in FLOORS.items():
        if name in versions and version_tuple(versions[name]) < version_tuple(floor):
            raise fail(f"{name}=={versions[name]} is below the wheel floor {floor}")
    neighbour = raw.get("neighbour")
    if neighbour is not None:
        neighbour = tuple(neighbour)
        other = pin_map(neighbour)
        if set(other) != set(versions):
            raise fail("the neighbour must pin the same packages")
        changed = [name for name in versions if versions[name] != other[name]]
        if len(changed) != 1 or changed[0] not in pair:
            raise fail("the neighbour must change exactly one package of the pair")
        for name, floor in FLOORS.items():
            if name in other and version_tuple(other[name]) < version_tuple(floor):
                raise fail(f"neighbour {name}=={other[name]} is below the wheel floor {floor}")
    link = str(raw.get("link", ""))
    if not link.startswith("https://"):
        raise fail("link must be an https URL")
    description = str(raw.get("description", "")).strip()
    reproduce = str(raw.get("reproduce", "")).strip()
    if not description or not reproduce:
        raise fail("description and reproduce are required")
    return Case(
        id=ident,
        pair=(pair[0], pair[1]),
        verdict=verdict,
        pins=pins,
        neighbour=neighbour,
        link=link,
        source=str(raw.get("source", "")),
        description=description,
        reproduce=reproduce,
        match=str(raw.get("match", "")),
    )


def suite_hash(repo: Path) -> str:
    """Identity of the smoke suite: a hash of compat/smoke's sources."""
    digest = hashlib.sha256()
    root = repo / "compat" / "smoke"
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def cache_key(*, where: str, depth: str | None, suite: str, pins: Sequence[str]) -> str:
    return "|".join([where, depth or "default", suite, *sorted(pins)])


def parse_check_json(stdout: str, seconds: float = 0.0) -> Outcome:
    """Verdict, the checks that failed, the first error line, the checks in error
    and every pin that ran."""
    data = json.loads(stdout)
    if isinstance(data, list):  # a future --json may list results
        data = data[0]
    verdict = str(data["verdict"])
    failed, broken = [], []
    for check in data.get("checks", []):
        if check.get("verdict") in FLAGGED:
            failed.append(str(check["name"]))
        elif check.get("verdict") == "check-error":
            broken.append(str(check["name"]))
    error = data.get("error")
    if error is None:
        errors = [c.get("error") for c in data.get("checks", []) if c.get("verdict") in FLAGGED]
        error = next((e for e in errors if e), None)
    first = None if error is None else str(error).splitlines()[0][:200]
    pins = data.get("combo", {}).get("pins", [])
    return Outcome(
        verdict=verdict,
        flagged_by=tuple(failed),
        error=first,
        seconds=seconds,
        check_errors=tuple(broken),
        versions={str(p["name"]): str(p["version"]) for p in pins},
    )


def run_compat(
    pins: Sequence[str],
    *,
    compat: Sequence[str],
    extra: Sequence[str],
    timeout: float,
    env: Mapping[str, str],
) -> Outcome:
    argv = [*compat, "check", *pins, "--force", "--json", *extra]
    started = time.monotonic()
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, cwd=REPO, env=env, check=False
        )
    except subprocess.TimeoutExpired:
        return Outcome(
            verdict="bench-timeout", flagged_by=(), error="compat check timed out", seconds=timeout
        )
    seconds = time.monotonic() - started
    try:
        return parse_check_json(done.stdout, seconds)
    except (ValueError, KeyError, IndexError, TypeError):
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return Outcome(
            verdict=f"compat-exit-{done.returncode}", flagged_by=(), error=tail, seconds=seconds
        )


class Cache:
    """Outcomes by key, one JSON file, rewritten after each new outcome."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._data: dict[str, dict[str, Any]] = {}
        if path.exists():
            self._data = json.loads(path.read_text(encoding="utf-8"))

    def get(self, key: str) -> Outcome | None:
        raw = self._data.get(key)
        if raw is None:
            return None
        return Outcome(
            verdict=raw["verdict"],
            flagged_by=tuple(raw["flagged_by"]),
            error=raw["error"],
            seconds=raw["seconds"],
            check_errors=tuple(raw.get("check_errors", ())),
            versions=raw.get("versions", {}),
        )

    def put(self, key: str, outcome: Outcome) -> None:
        self._data[key] = dataclasses.asdict(outcome)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._data, indent=1, sort_keys=True), encoding="utf-8")
        tmp.replace(self.path)


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Row:
    case: Case
    failing: Outcome
    neighbour: Outcome | None
    # The sources of the genuine breaks (calibration-exceptions.toml) that explain
    # every check that flagged the neighbour: another real break, not a false alarm.
    genuine: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Summary:
    flagged: int
    judged: int
    not_run: int
    per_pair: dict[str, tuple[int, int]]
    per_verdict: dict[str, tuple[int, int]]
    attributed: int
    false_alarms: int
    genuine: int  # neighbours flagged only by known genuine breaks
    by_shipped_tests: int  # failing cases flagged by a deep:* check
    neighbours_judged: int
    neighbours_not_run: int
    verdict_matches: int


def check_packages(name: str) -> frozenset[str]:
    """The packages a check name speaks for: 'import:pandas', 'pandas+scipy:windows',
    'numpy:promotion', 'deep:pandas:<test id>'."""
    head, _, rest = name.partition(":")
    if head in ("import", "deep"):
        return frozenset({rest.partition(":")[0]})
    return frozenset(head.split("+"))


def attributed(case: Case, outcome: Outcome) -> bool:
    """Flagged by a check that speaks only for packages of the case's pair (not a
    lucky hit through some other break in the same environment)."""
    return outcome.flagged and any(
        check_packages(name) <= set(case.pair) for name in outcome.flagged_by
    )


def explained_by(outcome: Outcome, known: Sequence[KnownBreak], base: str) -> tuple[str, ...]:
    """The sources of the known genuine breaks explaining every check that flagged
    ``outcome``; empty when one is unexplained (or nothing names the checks)."""
    versions = {canonicalize_name(n): Version(v) for n, v in outcome.versions.items()}
    sources: list[str] = []
    for check in outcome.flagged_by:
        why = next((k for k in known if k.explains(base, versions, check)), None)
        if why is None:
            return ()
        sources.append(why.source)
    return tuple(dict.fromkeys(sources))


def pair_label(pair: Sequence[str]) -> str:
    return " x ".join(sorted(pair))


def summarise(rows: Sequence[Row]) -> Summary:
    per_pair: dict[str, tuple[int, int]] = {}
    per_verdict: dict[str, tuple[int, int]] = {}
    flagged = judged = not_run = matches = hits_on_pair = shipped = 0
    alarms = genuine = n_judged = n_not_run = 0
    for row in rows:
        label = pair_label(row.case.pair)
        hit, total = per_pair.get(label, (0, 0))
        if row.failing.verdict == "pass" or row.failing.flagged:
            judged += 1
            total += 1
            if row.failing.flagged:
                flagged += 1
                hit += 1
                matches += row.failing.verdict == row.case.verdict
                hits_on_pair += attributed(row.case, row.failing)
                shipped += any(c.startswith("deep:") for c in row.failing.flagged_by)
        else:
            not_run += 1
        per_pair[label] = (hit, total)
        if row.failing.verdict == "pass" or row.failing.flagged:
            v_hit, v_total = per_verdict.get(row.case.verdict, (0, 0))
            per_verdict[row.case.verdict] = (v_hit + row.failing.flagged, v_total + 1)
        if row.neighbour is not None:
            if row.neighbour.verdict == "pass" or row.neighbour.flagged:
                n_judged += 1
                genuine += row.neighbour.flagged and bool(row.genuine)
                alarms += row.neighbour.flagged and not row.genuine
            else:
                n_not_run += 1
    return Summary(
        flagged=flagged,
        judged=judged,
        not_run=not_run,
        per_pair=dict(sorted(per_pair.items())),
        per_verdict=dict(sorted(per_verdict.items())),
        attributed=hits_on_pair,
        false_alarms=alarms,
        genuine=genuine,
        by_shipped_tests=shipped,
        neighbours_judged=n_judged,
        neighbours_not_run=n_not_run,
        verdict_matches=matches,
    )


def short(names: Sequence[str], keep: int = 2) -> str:
    """A few check names; a deep run can fail dozens of tests at once."""
    text = ", ".join(names[:keep])
    return text + (f" (+{len(names) - keep} more)" if len(names) > keep else "")


def report(rows: Sequence[Row], summary: Summary, *, header: str, deep: bool = False) -> str:
    lines = [header, ""]
    lines.append(f"{'case':44} {'expected':13} {'got':13} {'flagged by':38} neighbour")
    for row in rows:
        got = row.failing.verdict
        by = short(row.failing.flagged_by) or (row.failing.error or "")[:38]
        if row.neighbour is None:
            nb = "-"
        elif row.neighbour.flagged:
            tag = f"GENUINE ({', '.join(row.genuine)})" if row.genuine else "FALSE ALARM"
            nb = f"{tag} {row.neighbour.verdict} {short(row.neighbour.flagged_by)}"
        else:
            nb = row.neighbour.verdict
        notes = [*row.failing.check_errors, *(row.neighbour.check_errors if row.neighbour else ())]
        if notes:
            nb += f"  (check-error: {', '.join(sorted(set(notes)))})"
        lines.append(f"{row.case.id:44} {row.case.verdict:13} {got:13} {by[:38]:38} {nb}")
    lines.append("")
    lines.append("recall per pair (flagged / judged):")
    for label, (hit, total) in summary.per_pair.items():
        lines.append(f"  {label:26} {hit:2d} / {total:2d}")
    lines.append("recall by expected verdict:")
    for verdict, (hit, total) in summary.per_verdict.items():
        lines.append(f"  {verdict:26} {hit:2d} / {total:2d}")
    pct = 100.0 * summary.flagged / summary.judged if summary.judged else 0.0
    lines.append(
        f"recall: {summary.flagged} / {summary.judged} failing cases flagged ({pct:.0f}%),"
        f" {summary.verdict_matches} with the expected verdict, {summary.attributed} by a check"
        f" of the pair itself; {summary.not_run} not run"
    )
    if deep:
        lines.append(
            f"shipped tests: {summary.by_shipped_tests} of the {summary.flagged} flagged"
            " failing cases also flagged by a deep:* check"
        )
    lines.append(
        f"false alarms: {summary.false_alarms} / {summary.neighbours_judged} passing"
        f" neighbours; {summary.genuine} more flagged only by genuine breaks"
        f" ({EXCEPTIONS.name}); {summary.neighbours_not_run} not run"
    )
    return "\n".join(lines)


def select(
    cases: Sequence[Case], patterns: Sequence[str], *, beyond_six: bool = False
) -> list[Case]:
    """The cases a pattern names (all without one); with ``beyond_six``, only those
    whose pair holds a package outside the six."""
    if beyond_six:
        cases = [c for c in cases if any(canonicalize_name(n) not in SIX for n in c.pair)]
    if not patterns:
        return list(cases)
    return [c for c in cases if any(p in c.id or p in pair_label(c.pair) for p in patterns)]


def bench(args: argparse.Namespace) -> int:
    cases = select(load_corpus(args.corpus), args.k, beyond_six=args.beyond_six)
    if args.docker:
        where = f"docker:{args.image}"
        extra = ["--backend", "docker", "--image", args.image, "--add-system-deps"]
    else:
        where = "local"
        extra = ["--backend", "local"]
    if args.depth:
        extra += ["--depth", args.depth]
    compat = args.compat.split() if args.compat else [sys.executable, "-m", "compat"]
    suite = suite_hash(REPO)
    cache = Cache(args.cache)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO
    ).stdout.strip()

    jobs: list[tuple[str, tuple[str, ...]]] = []
    for case in cases:
        jobs.append((case.id, case.pins))
        if case.neighbour is not None:
            jobs.append((case.id + "~", case.neighbour))
    outcomes: dict[str, Outcome] = {}
    todo = []
    for name, pins in jobs:
        key = cache_key(where=where, depth=args.depth, suite=suite, pins=pins)
        hit = None if args.rerun else cache.get(key)
        if hit is not None:
            outcomes[name] = hit
        else:
            todo.append((name, pins, key))
    log(f"{len(jobs)} runs, {len(jobs) - len(todo)} cached, {len(todo)} to run ({where})")
    # A results database per commit: trees of different schema versions never
    # share one, and no verdict recorded by another suite version is reused.
    db = args.db or str(args.cache.parent / f"bench_recall-{commit or suite}.db")
    env = dict(os.environ, COMPAT_DB=db)

    def one(job: tuple[str, tuple[str, ...], str]) -> tuple[str, str, Outcome]:
        name, pins, key = job
        outcome = run_compat(pins, compat=compat, extra=extra, timeout=args.timeout, env=env)
        return name, key, outcome

    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for done, (name, key, outcome) in enumerate(pool.map(one, todo), 1):
            outcomes[name] = outcome
            if outcome.verdict == "pass" or outcome.flagged:
                cache.put(key, outcome)  # harness errors are retried next time
            log(f"[{done}/{len(todo)}] {name}: {outcome.verdict} ({outcome.seconds:.0f}s)")

    known = load_known_breaks(args.exceptions)
    base = args.image if args.docker else "host"
    rows = []
    for case in cases:
        neighbour = outcomes.get(case.id + "~") if case.neighbour else None
        genuine = explained_by(neighbour, known, base) if neighbour and neighbour.flagged else ()
        rows.append(Row(case=case, failing=outcomes[case.id], neighbour=neighbour, genuine=genuine))
    summary = summarise(rows)
    header = f"bench_recall: {where}, depth {args.depth or 'default'}, commit {commit}"
    header += f", suite {suite}, {len(cases)} cases"
    print(report(rows, summary, header=header, deep=args.depth == "deep"))
    if args.json_out:
        args.json_out.write_text(
            json.dumps(
                {
                    "where": where,
                    "commit": commit,
                    "suite": suite,
                    "summary": dataclasses.asdict(summary),
                    "rows": [
                        {
                            "id": r.case.id,
                            "pair": pair_label(r.case.pair),
                            "expected": r.case.verdict,
                            "failing": dataclasses.asdict(r.failing),
                            "neighbour": None
                            if r.neighbour is None
                            else dataclasses.asdict(r.neighbour),
                            "genuine": list(r.genuine),
                        }
                        for r in rows
                    ],
                },
                indent=1,
            ),
            encoding="utf-8",
        )
    return 0


# --- --verify: reproduce each case without compat ------------------------------

# Runs inside the case's environment: import every pinned package, then the
# snippet; prints one JSON line saying how far it got.
DRIVER = """
import importlib, json, sys, traceback
names, snippet = json.loads(sys.argv[1])
phase = "import"
try:
    for name in names:
        importlib.import_module(name)
    phase = "run"
    exec(compile(snippet, "<reproduce>", "exec"), {"__name__": "__reproduce__"})
except BaseException as exc:
    kind = "import-error" if phase == "import" or isinstance(exc, ImportError) else "runtime-error"
    line = traceback.format_exception_only(type(exc), exc)[-1].strip().splitlines()[0]
    print(json.dumps({"verdict": kind, "error": line[:300]}), flush=True)
    sys.exit(0)
print(json.dumps({"verdict": "pass", "error": None}), flush=True)
"""


def venv_for(pins: Sequence[str], root: Path, env: Mapping[str, str]) -> Path:
    """A uv virtual environment with exactly these pins (overriding declared
    requirements, as --force does), reused across runs."""
    key = hashlib.sha256("\n".join(sorted(pins)).encode()).hexdigest()[:16]
    where = root / key
    python = where / "bin" / "python"
    if (where / ".complete").exists():
        return python
    subprocess.run(["uv", "venv", "-q", "--python", "3.11", str(where)], check=True, env=env)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as req:
        req.write("\n".join(pins) + "\n")
    install = ["uv", "pip", "install", "-q", "--python", str(python), "--only-binary", ":all:"]
    subprocess.run([*install, "-r", req.name, "--override", req.name], check=True, env=env)
    Path(req.name).unlink()
    (where / ".complete").write_text("", encoding="utf-8")
    return python


def reproduce(case: Case, pins: Sequence[str], root: Path) -> tuple[str, str | None]:
    env = dict(os.environ, MPLBACKEND="Agg")
    env.setdefault("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")
    try:
        python = venv_for(pins, root, env)
    except subprocess.CalledProcessError as exc:
        return "install-failed", str(exc)
    names = [import_names(n)[0] for n in pin_map(pins)]
    snippet = textwrap.dedent(case.reproduce)
    done = subprocess.run(
        [str(python), "-c", DRIVER, json.dumps([names, snippet])],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    if done.returncode < 0:
        return "crash", f"signal {-done.returncode}"
    lines = done.stdout.strip().splitlines()
    if not lines:
        return "crash", (done.stderr.strip().splitlines() or ["no output"])[-1]
    result = json.loads(lines[-1])
    return str(result["verdict"]), result["error"]


def verify(args: argparse.Namespace) -> int:
    cases = select(load_corpus(args.corpus), args.k, beyond_six=args.beyond_six)
    root = args.venvs
    bad = 0

    def one(case: Case) -> tuple[Case, tuple[str, str | None], tuple[str, str | None] | None]:
        got = reproduce(case, case.pins, root)
        nb = reproduce(case, case.neighbour, root) if case.neighbour else None
        return case, got, nb

    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for case, (verdict, error), nb in pool.map(one, cases):
            ok = verdict == case.verdict and case.match in (error or "")
            ok = ok and (nb is None or nb[0] == "pass")
            bad += not ok
            status = "ok  " if ok else "FAIL"
            nb_text = "-" if nb is None else nb[0] + ("" if nb[1] is None else f" ({nb[1]})")
            print(f"{status} {case.id}: {verdict} ({error}); neighbour {nb_text}", flush=True)
    print(f"{len(cases) - bad} / {len(cases)} cases reproduce as described")
    return 1 if bad else 0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("-k", action="append", default=[], help="substring of case id or pair")
    parser.add_argument(
        "--beyond-six", action="store_true", help="only cases with a package outside the six"
    )
    parser.add_argument("-j", "--jobs", type=int, default=1, help="runs at once (2 cores!)")
    parser.add_argument("--docker", action="store_true", help=f"Docker, --image {DOCKER_IMAGE}")
    parser.add_argument("--image", default=DOCKER_IMAGE)
    parser.add_argument("--depth", help="passed to compat check --depth (import|smoke|deep)")
    parser.add_argument("--compat", help="command that runs compat (default: this tree's)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per compat check")
    parser.add_argument(
        "--cache", type=Path, default=Path.home() / ".cache" / "compat" / "bench_recall.json"
    )
    parser.add_argument("--rerun", action="store_true", help="ignore cached outcomes")
    parser.add_argument(
        "--exceptions", type=Path, default=EXCEPTIONS, help="genuine breaks a neighbour may hold"
    )
    parser.add_argument("--db", help="results database for compat (default: one per commit)")
    parser.add_argument("--json-out", type=Path, help="also write the results as JSON")
    parser.add_argument("--verify", action="store_true", help="reproduce the corpus with uv")
    parser.add_argument(
        "--venvs", type=Path, default=Path(tempfile.gettempdir()) / "known-breaks-venvs"
    )
    args = parser.parse_args(argv)
    action: Callable[[argparse.Namespace], int] = verify if args.verify else bench
    return action(args)


if __name__ == "__main__":
    sys.exit(main())
