"""Calibrate the smoke suite against history: it must not fail stacks that worked.

For each of the six packages, the newest patch of every minor release that has a
file installing on the base (a wheel for its Python: these bases have no
compiler) is combined with its contemporaneous partners, i.e. the partners as
they stood on its release day, clipped to what installs
(``compat.resolve.history``), and run on each base in Docker with the full smoke
suite, missing system libraries added (as ``scan --add-system-deps``). Such a
stack worked when it came out, so every one must pass; a failure is either a
genuine, documented incompatibility listed with its upstream source in
``tests/data/calibration-exceptions.toml``, or an UNEXPLAINED false alarm of the
suite. Check errors (a check calling an API the release never had; never counted
in a verdict) are counted apart: they are defects of checks too.

    python benchmarks/calibrate.py [--base IMAGE ...] [--sample] [--newest N] [--release REQ ...]
                                   [-j 2] [--json FILE] [--notes FILE] [--db URL] [--list]
                                   [--depth deep] [--matrix matrix/data-stack.toml]

``--sample`` runs only the oldest and the newest calibrated release of each
package (what CI runs). ``--newest N`` keeps the stacks of the N most recent of
those releases (across packages): the stacks users scan today. ``--matrix FILE``
calibrates a matrix's packages instead of the six (each release within the
package's specifier there), every stack holding all of them as they stood on the
release's day. Results go to a results
database and a stack already in it is not run again (``--retest`` runs it), so an
interrupted run resumes; ``--tally-only`` counts what the database has. The
sample's stacks run first. Prints per base: stacks, passes, explained failures,
unexplained false alarms, check errors, unresolvable stacks. Exits 1 when any
false alarm is unexplained. ``--depth deep`` adds the deep tier: a regression of
a dependent's shipped tests against its own contemporaneous stack is a failure
like any other, explained or not.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import sys
import time
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from compat.config import RunConfig, Timeouts
from compat.harness import make_pipeline
from compat.index.asof import DatedIndex
from compat.index.pypi import PyPIIndex
from compat.matrix import load_matrix
from compat.model import CheckVerdict, Combo, ComboResult, Depth, Verdict
from compat.reporter import Reporter
from compat.resolve.history import WHEELS_ONLY, Stack, contemporaneous_stack, installable_since
from compat.settings import NetworkSettings
from compat.store import Store, sqlite_url
from compat.targets.probe import probe_image
from compat.targets.target import Target
from compat.workflows.scan import split_done
from compat.workflows.session import Session

SIX = ("numpy", "scipy", "scikit-learn", "pandas", "matplotlib", "lightgbm")
SIX_STACK: Mapping[str, SpecifierSet] = {name: SpecifierSet() for name in SIX}
BASES = ("local/debian-python:bookworm", "local/debian-python:trixie")
EXCEPTIONS = Path(__file__).parent.parent / "tests" / "data" / "calibration-exceptions.toml"


@dataclass(frozen=True, kw_only=True, slots=True)
class KnownBreak:
    """A genuine incompatibility a contemporaneous stack holds, with its source."""

    when: tuple[Requirement, ...]  # every one met by the stack's pins
    check: str | None  # the failing check's name, or an fnmatch pattern of it; None: any
    bases: tuple[str, ...]  # image references it applies to; empty: all
    reason: str
    source: str  # the upstream issue, changelog or commit

    def explains(self, base: str, versions: Mapping[NormalizedName, Version], failure: str) -> bool:
        """Whether the failing check ``failure``, on a stack of ``versions`` (every
        pin) on image ``base``, is this break."""
        if self.bases and base not in self.bases:
            return False
        for req in self.when:
            version = versions.get(canonicalize_name(req.name))
            if version is None or not req.specifier.contains(version, prereleases=True):
                return False
        return self.check is None or fnmatch.fnmatchcase(failure, self.check)


def load_known_breaks(path: Path) -> tuple[KnownBreak, ...]:
    """The exceptions file; each entry must say why and link its upstream source."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    found = []
    for i, entry in enumerate(data.get("exception", [])):
        where = f"{path}: exception #{i + 1}"
        source, reason = entry.get("source", ""), entry.get("reason", "")
        if not (isinstance(source, str) and source.startswith("https://")):
            raise SystemExit(f"{where}: needs `source`, an https link to the upstream record")
        if not (isinstance(reason, str) and reason.strip()):
            raise SystemExit(f"{where}: needs `reason`")
        try:
            when = tuple(Requirement(r) for r in entry["when"])
        except (KeyError, TypeError, InvalidRequirement) as exc:
            raise SystemExit(f"{where}: `when` must be a list of requirements: {exc}") from None
        found.append(
            KnownBreak(
                when=when,
                check=entry.get("check"),
                bases=tuple(entry.get("bases", ())),
                reason=reason.strip(),
                source=source,
            )
        )
    return tuple(found)


def calibrated_releases(
    index: DatedIndex, target: Target, packages: Mapping[str, SpecifierSet] = SIX_STACK
) -> dict[NormalizedName, list[Version]]:
    """Per package, the newest patch of every minor that installs on ``target`` (and
    that the package's specifier allows), oldest first."""
    releases: dict[NormalizedName, list[Version]] = {}
    for raw, allowed in packages.items():
        name = canonicalize_name(raw)
        newest: dict[tuple[int, int], Version] = {}
        for version in installable_since(index, target, name, WHEELS_ONLY):
            if not allowed.contains(version, prereleases=True):
                continue
            key = (version.major, version.minor)
            newest[key] = max(version, newest.get(key, version))
        releases[name] = sorted(newest.values())
    return releases


def sample_of(releases: dict[NormalizedName, list[Version]]) -> dict[NormalizedName, list[Version]]:
    """The oldest and the newest calibrated release of each package."""
    return {n: sorted({vs[0], vs[-1]}) for n, vs in releases.items() if vs}


def stacks_for(
    index: DatedIndex,
    target: Target,
    releases: dict[NormalizedName, list[Version]],
    packages: Sequence[str] = SIX,
) -> list[Stack]:
    return [
        contemporaneous_stack(index, target, name, version, packages)
        for name, versions in releases.items()
        for version in versions
    ]


@dataclass(frozen=True, kw_only=True, slots=True)
class Failure:
    """One failing check (or a failure before any check ran) of one stack."""

    stacks: tuple[str, ...]  # the releases whose contemporaneous stack this is
    pins: str
    check: str
    verdict: str
    error: str
    explained_by: str | None  # the known break's source, when explained

    def to_json(self) -> dict[str, Any]:
        return {
            "stacks": list(self.stacks),
            "pins": self.pins,
            "check": self.check,
            "verdict": self.verdict,
            "error": self.error,
            "explained_by": self.explained_by,
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class BaseTally:
    base: str
    python: str
    stacks: int  # distinct stacks run (several releases may share one)
    passes: int
    explained: int  # failing stacks whose every failure is a known break
    unexplained: int  # failing stacks with a failure nobody documented: false alarms
    check_errors: int  # stacks where some check failed by its own defect
    unresolved: tuple[str, ...]  # releases whose stack does not resolve
    failures: tuple[Failure, ...]
    check_error_lines: tuple[Failure, ...]
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "python": self.python,
            "stacks": self.stacks,
            "passes": self.passes,
            "explained": self.explained,
            "unexplained": self.unexplained,
            "check_errors": self.check_errors,
            "unresolved": list(self.unresolved),
            "failures": [f.to_json() for f in self.failures],
            "check_error_lines": [f.to_json() for f in self.check_error_lines],
            "seconds": round(self.seconds, 1),
        }


def failures_of(result: ComboResult) -> list[tuple[str, str, str]]:
    """(check, verdict, first error line) of every failure in ``result``."""
    found = [
        (c.name, c.verdict.value, c.error or "")
        for c in result.checks
        if c.verdict.as_verdict() not in (None, Verdict.PASS)
    ]
    if not found and not result.ok:  # failed before any check: install, import, crash
        found.append(
            (result.failed_check or result.verdict.value, result.verdict.value, result.error or "")
        )
    return found


def tally(
    base: str,
    target: Target,
    stacks: Sequence[Stack],
    results: Sequence[ComboResult],
    known: Sequence[KnownBreak],
    seconds: float,
) -> BaseTally:
    """Count the results: passes, failures explained by ``known``, the rest false alarms."""
    by_combo: dict[str, list[str]] = {}
    for stack in stacks:
        if stack.combo is not None:
            by_combo.setdefault(stack.combo.id, []).append(stack.label())
    passes = explained = unexplained = with_errors = 0
    failures: list[Failure] = []
    errors: list[Failure] = []
    for result in results:
        names = tuple(by_combo.get(result.combo.id, ()))
        versions = result.combo.versions
        pins = " ".join(f"{n}=={versions[n]}" for n in result.combo.requested if n in versions)
        for broken in result.check_errors:
            errors.append(
                Failure(
                    stacks=names,
                    pins=pins,
                    check=broken.name,
                    verdict=CheckVerdict.CHECK_ERROR.value,
                    error=broken.error or "",
                    explained_by=None,
                )
            )
        with_errors += bool(result.check_errors)
        found = failures_of(result)
        if not found:
            passes += 1
            continue
        all_known = True
        for check, verdict, error in found:
            why = next((k for k in known if k.explains(base, result.combo.versions, check)), None)
            all_known = all_known and why is not None
            failures.append(
                Failure(
                    stacks=names,
                    pins=pins,
                    check=check,
                    verdict=verdict,
                    error=error,
                    explained_by=why.source if why else None,
                )
            )
        if all_known:
            explained += 1
        else:
            unexplained += 1
    return BaseTally(
        base=base,
        python=target.python,
        stacks=len(results),
        passes=passes,
        explained=explained,
        unexplained=unexplained,
        check_errors=with_errors,
        unresolved=tuple(s.label() for s in stacks if s.combo is None),
        failures=tuple(failures),
        check_error_lines=tuple(errors),
        seconds=seconds,
    )


class LineReporter(Reporter):
    """One line per finished stack, on stderr."""

    def combo_finished(self, result: ComboResult) -> None:
        line = f"  {result.verdict.value:<14} {result.combo.label()}"
        if not result.ok:
            line += f"  [{result.failed_check}] {result.error or ''}"
        if result.check_errors:
            line += f"  ({len(result.check_errors)} check errors)"
        print(line[:300], file=sys.stderr, flush=True)

    def warning(self, message: str) -> None:
        print(f"  ! {message}", file=sys.stderr, flush=True)


def calibrate_base(
    base: str,
    *,
    index: PyPIIndex,
    store: Store,
    known: Sequence[KnownBreak],
    sample: bool,
    jobs: int,
    newest: int | None = None,
    cache_dir: Path,
    network: NetworkSettings,
    list_only: bool = False,
    only: Sequence[Requirement] = (),
    timeout: float = 1800.0,
    retest: bool = False,
    tally_only: bool = False,
    depth: Depth = Depth.SMOKE,
    packages: Mapping[str, SpecifierSet] = SIX_STACK,
    run_name: str = "calibration",
) -> BaseTally | None:
    """Run the base's stacks not yet in ``store`` (all with ``retest``; none with
    ``tally_only``; at ``depth`` deep, also those that passed without the deep
    tier) and count every stack that has a result there."""
    start = time.perf_counter()
    target = probe_image(base, name=base, cache_dir=cache_dir / "targets")
    releases = calibrated_releases(index, target, packages)
    if sample:
        releases = sample_of(releases)
    if only:
        releases = {n: [v for v in vs if picked(only, n, v)] for n, vs in releases.items()}
    stacks = stacks_for(index, target, releases, tuple(packages))
    if newest is not None:
        stacks = sorted(stacks, key=lambda s: s.released, reverse=True)[:newest]
    # the sample's stacks first: an interrupted run has covered every package
    first = sample_of(releases)
    stacks.sort(key=lambda s: s.version not in first.get(s.name, ()))
    combos = list({s.combo.id: s.combo for s in stacks if s.combo is not None}.values())
    print(
        f"{base} (Python {target.python}): {sum(map(len, releases.values()))} releases, "
        f"{len(combos)} distinct stacks",
        file=sys.stderr,
        flush=True,
    )
    if list_only:
        for stack in stacks:
            what = stack.combo.label() if stack.combo else f"UNRESOLVED: {stack.outcome}"
            clip = f" (clipped by {', '.join(stack.clipped)})" if stack.clipped else ""
            print(f"{stack.label():<22} {stack.released} as of {stack.as_of}{clip}: {what}")
        return None
    config = RunConfig(
        backend="docker",
        jobs=jobs,
        add_system_deps=True,
        depth=depth,
        timeouts=Timeouts(combination=timeout, check=timeout),
    )
    reporter = LineReporter()
    todo: list[Combo] = []
    if not tally_only:
        todo, _ = split_done(
            store, combos, target, retest=retest, add_system_deps=False, depth=depth
        )
    if todo:
        with (
            make_pipeline(
                config, cache_dir=cache_dir, network=network, reporter=reporter
            ) as backend,
        ):
            session = Session(
                pipeline=backend,
                store=store,
                index=index,
                reporter=reporter,
                config=config,
                target=target,
            )
            with session.recording(matrix_name=run_name) as run_id:
                session.run(todo, run_id)
    assert target.image_id is not None  # probed
    rows = store.latest_results([c.id for c in combos], target.image_id)
    results = [found.result for row in rows.values() if (found := store.get(row.id))]
    ran = {r.combo.id for r in results}
    stacks = [s for s in stacks if s.combo is None or s.combo.id in ran]
    return tally(base, target, stacks, results, known, time.perf_counter() - start)


def picked(only: Sequence[Requirement], name: NormalizedName, version: Version) -> bool:
    """Whether ``--release`` asks for this release."""
    return any(
        canonicalize_name(r.name) == name and r.specifier.contains(version, prereleases=True)
        for r in only
    )


def table(tallies: Sequence[BaseTally]) -> str:
    lines = [
        f"{'base':<32} {'py':<5} {'stacks':>6} {'passes':>6} {'explained':>9} "
        f"{'UNEXPLAINED':>11} {'check-errors':>12} {'unresolved':>10} {'time':>7}"
    ]
    for t in tallies:
        lines.append(
            f"{t.base:<32} {t.python:<5} {t.stacks:>6} {t.passes:>6} {t.explained:>9} "
            f"{t.unexplained:>11} {t.check_errors:>12} {len(t.unresolved):>10} {t.seconds:>6.0f}s"
        )
    for t in tallies:
        for f in t.failures:
            tag = "explained" if f.explained_by else "UNEXPLAINED"
            lines.append(f"{t.base}: {tag} {f.check} ({f.verdict}) on {f.pins}: {f.error}")
        for f in t.check_error_lines:
            lines.append(f"{t.base}: check-error {f.check} on {f.pins}: {f.error}")
        for label in t.unresolved:
            lines.append(f"{t.base}: unresolved stack of {label}")
    return "\n".join(lines)


def notes(tallies: Sequence[BaseTally]) -> str:
    """The false alarms and check errors as markdown, for whoever fixes the checks."""
    lines = ["# Calibration: false alarms and check errors", ""]
    for t in tallies:
        lines.append(
            f"## {t.base} (Python {t.python}): {t.stacks} stacks, {t.passes} pass, "
            f"{t.explained} explained, {t.unexplained} UNEXPLAINED, "
            f"{t.check_errors} with check errors"
        )
        lines.append("")
        for f in t.failures:
            if f.explained_by is None:
                lines.append(
                    f"- FALSE ALARM `{f.check}` ({f.verdict}) — stack of {', '.join(f.stacks)}: "
                    f"`{f.pins}`\n  `{f.error}`"
                )
        for f in t.check_error_lines:
            lines.append(
                f"- check-error `{f.check}` — stack of {', '.join(f.stacks)}: `{f.pins}`\n"
                f"  `{f.error}`"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", action="append", help="Image reference (repeatable).")
    parser.add_argument("--sample", action="store_true", help="Oldest and newest per package.")
    parser.add_argument(
        "--newest", type=int, metavar="N", help="Only the stacks of the N newest releases."
    )
    parser.add_argument("-j", "--jobs", type=int, default=2)
    # generous: a stack that is slow on a busy machine is not a false alarm of a check
    parser.add_argument("--timeout", type=float, default=1800.0, help="Seconds per stack.")
    parser.add_argument("--exceptions", type=Path, default=EXCEPTIONS)
    parser.add_argument("--json", type=Path, help="Write the tallies as JSON here.")
    parser.add_argument("--notes", type=Path, help="Write false alarms as markdown here.")
    parser.add_argument("--db", help="Results database URL (default: calibration.db in the cache).")
    parser.add_argument("--cache-dir", type=Path)
    parser.add_argument("--list", action="store_true", help="Only list the stacks; run nothing.")
    parser.add_argument("--retest", action="store_true", help="Run stacks the database has.")
    parser.add_argument(
        "--tally-only", action="store_true", help="Run nothing; count what the database has."
    )
    parser.add_argument(
        "--depth",
        type=Depth,
        choices=[Depth.SMOKE, Depth.DEEP],
        default=Depth.SMOKE,
        help="deep: also the dependents' shipped tests, differentially (slow: minutes a stack).",
    )
    parser.add_argument(
        "--matrix",
        type=Path,
        help="Calibrate a matrix's packages (each within its specifier) on stacks of them "
        "all, e.g. matrix/data-stack.toml (default: the six).",
    )
    parser.add_argument(
        "--release",
        action="append",
        type=Requirement,
        default=[],
        help="Only these calibrated releases, e.g. 'lightgbm<3' (repeatable; to re-run some).",
    )
    args = parser.parse_args(argv)

    cache_dir = args.cache_dir or Path(
        os.environ.get("COMPAT_CACHE_DIR") or platformdirs.user_cache_dir("compat")
    )
    network = NetworkSettings.from_env(os.environ)
    known = load_known_breaks(args.exceptions)
    packages, run_name = SIX_STACK, "calibration"
    if args.matrix is not None:
        matrix = load_matrix(args.matrix)
        packages = {p.name: p.versions for p in matrix.packages}
        run_name = f"calibration:{matrix.name}"
    db = args.db or sqlite_url(cache_dir / "calibration.db")
    tallies: list[BaseTally] = []
    with (
        PyPIIndex(network, cache_dir=cache_dir / "index") as index,
        Store.open(db) as store,
    ):
        for base in args.base or BASES:
            tallied = calibrate_base(
                base,
                index=index,
                store=store,
                known=known,
                sample=args.sample,
                newest=args.newest,
                jobs=args.jobs,
                cache_dir=cache_dir,
                network=network,
                list_only=args.list,
                only=args.release,
                timeout=args.timeout,
                retest=args.retest,
                tally_only=args.tally_only,
                depth=args.depth,
                packages=packages,
                run_name=run_name,
            )
            if tallied is not None:
                tallies.append(tallied)
    if args.list:
        return 0
    print(table(tallies))
    print(f"results: {db} (compat --db {db} show ID)")
    if args.json:
        args.json.write_text(json.dumps([t.to_json() for t in tallies], indent=2) + "\n")
    if args.notes:
        args.notes.write_text(notes(tallies))
    return 1 if any(t.unexplained for t in tallies) else 0


if __name__ == "__main__":
    sys.exit(main())
