"""A results database holding every case the report must tell apart, on one base:

- a scan (matrix ``ml-stack``) of numpy x pandas x lightgbm x scikit-learn where
  lightgbm 4.5.0 meets scikit-learn 1.9.1 in its sklearn API (runtime-error of the
  ``lightgbm+scikit-learn`` check), pandas 2.1.1 fails to import on numpy 2's binary
  interface, and lightgbm 4.7.0 lacks libgomp.so.1 (the environment);
- an ad-hoc ``compat check`` of a combination the scan also ran (its history);
- bisect probes and the incompatibility bisection recorded (numpy 2.0.2 x pandas 2.1.1);
- two nightly runs: the first sees lightgbm 4.6.0; the second finds a combination
  that passed before (and was the lock's choice) now crashing, so the lock moves.

Times are fixed, so the report's dates are known.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock

from compat.model import CheckKind, CheckResult, CheckVerdict, Combo, ComboResult, Verdict
from compat.store import Store, sqlite_url
from compat.targets.target import Target
from tests.helpers.results import DEBIAN_ID, make_combo, make_target

MATRIX = "ml-stack"
NATIVE = "lightgbm+numpy:native-train"
START = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)
ABI = "ValueError: numpy.dtype size changed, may indicate binary incompatibility"
GOMP = "OSError: libgomp.so.1: cannot open shared object file: No such file or directory"
SKLEARN = "TypeError: LGBMClassifier.__sklearn_tags__ got an unexpected keyword"


@dataclass(frozen=True, kw_only=True)
class Fixture:
    target: Target
    abi: Combo  # numpy 2.0.2, pandas 2.1.1: import error on numpy's ABI
    sklearn: Combo  # lightgbm 4.5.0 x scikit-learn 1.9.1
    gomp: Combo  # lightgbm 4.7.0 without libgomp.so.1
    good: Combo  # passes throughout
    newer: Combo  # lightgbm 4.6.0, from the first night on
    regressed: Combo  # passed in the scan, crashes in the second night


def _check(name: str, verdict: CheckVerdict, error: str | None = None) -> CheckResult:
    log = f"Traceback (most recent call last):\n{error}\n" if error else ""
    # the kind the runner gives a check so named (import:<dist>, or a built-in check)
    kind = CheckKind.of_legacy_name(name)
    return CheckResult(name=name, kind=kind, verdict=verdict, duration=0.2, error=error, log=log)


def result(
    target: Target,
    combo: Combo,
    verdict: Verdict = Verdict.PASS,
    *,
    check: str = "",
    error: str | None = None,
    system_deps: tuple[str, ...] = (),
) -> ComboResult:
    checks = [_check("import:numpy", CheckVerdict.PASS)]
    if verdict.ok:  # a smoke pass: imports alone are no verdict
        checks.append(_check("numpy:basics", CheckVerdict.PASS))
    else:
        as_check = CheckVerdict(verdict.value)
        checks.append(_check(check, as_check, error))
    return ComboResult(
        combo=combo,
        verdict=verdict,
        checks=tuple(checks),
        error=error,
        failed_check=None if verdict.ok else check,
        duration=2.0,
        system_deps=system_deps,
        backend="docker",
        image_id=target.image_id,
    )


def populate(store: Store) -> Fixture:
    target = make_target("debian-slim", "local/debian-python:bookworm", DEBIAN_ID)

    def stack(np: str, pd: str, lgb: str, sk: str) -> Combo:
        return make_combo(target, {"numpy": np, "pandas": pd, "lightgbm": lgb, "scikit-learn": sk})

    f = Fixture(
        target=target,
        abi=stack("2.0.2", "2.1.1", "4.5.0", "1.5.2"),
        sklearn=stack("1.26.4", "2.2.3", "4.5.0", "1.9.1"),
        gomp=stack("1.26.4", "2.2.3", "4.7.0", "1.5.2"),
        good=stack("1.26.4", "2.2.3", "4.5.0", "1.5.2"),
        newer=stack("1.26.4", "2.2.3", "4.6.0", "1.5.2"),
        regressed=stack("2.0.2", "2.2.3", "4.5.0", "1.5.2"),
    )
    moment = [START]

    def now() -> datetime:
        moment[0] += timedelta(seconds=1)
        return moment[0]

    def at(day: int) -> None:
        moment[0] = START + timedelta(days=day)

    with mock.patch("compat.store.store.now", now):
        scan = store.start_run(target, backend="docker", matrix_name=MATRIX, strategy="pairwise")
        store.record(scan, target, result(target, f.good))
        store.record(scan, target, result(target, f.regressed))
        store.record(
            scan,
            target,
            result(target, f.abi, Verdict.IMPORT_ERROR, check="import:pandas", error=ABI),
        )
        store.record(
            scan,
            target,
            result(
                target,
                f.sklearn,
                Verdict.RUNTIME_ERROR,
                check="lightgbm+scikit-learn:sklearn-api",
                error=SKLEARN,
            ),
        )
        store.record(
            scan,
            target,
            result(
                target,
                f.gomp,
                Verdict.IMPORT_ERROR,
                check="import:lightgbm",
                error=GOMP,
                system_deps=("libgomp1",),
            ),
        )
        store.finish_run(scan)
        store.record_seen(
            target.name, {"numpy": ["1.26.4", "2.0.2"], "lightgbm": ["4.5.0", "4.7.0"]}
        )

        at(1)
        check = store.start_run(target, backend="docker")
        store.record(
            check,
            target,
            result(target, f.abi, Verdict.IMPORT_ERROR, check="import:pandas", error=ABI),
        )
        store.finish_run(check)
        probes = store.start_run(target, backend="docker", strategy="bisect")
        only_pandas = stack("1.26.4", "2.1.1", "4.5.0", "1.5.2")
        store.record(probes, target, result(target, only_pandas))
        probe = store.record(
            probes,
            target,
            result(target, f.abi, Verdict.IMPORT_ERROR, check="import:pandas", error=ABI),
        )
        store.finish_run(probes)
        store.record_incompatibility(
            base=target.name,
            image_id=target.image_id,
            packages={"numpy": "2.0.2", "pandas": "2.1.1"},
            verdict=Verdict.IMPORT_ERROR,
            explanation=ABI,
            evidence=[probe],
        )

        at(2)
        night = store.start_run(target, backend="docker", matrix_name=MATRIX, strategy="nightly")
        store.record(night, target, result(target, f.newer))
        store.record(night, target, result(target, f.good))
        store.record_seen(target.name, {"lightgbm": ["4.6.0"]})  # as nightly does, at its end
        store.finish_run(night)

        at(3)
        night = store.start_run(target, backend="docker", matrix_name=MATRIX, strategy="nightly")
        crash = result(target, f.regressed, Verdict.CRASH, check=NATIVE, error="SIGSEGV")
        store.record(night, target, crash)
        store.record(night, target, result(target, f.newer))
        store.finish_run(night)
    return f


def populated(directory: Path) -> tuple[str, Fixture]:
    """A new SQLite results database in ``directory`` holding every case: its URL and
    what it holds."""
    url = sqlite_url(directory / "r.db")
    with Store.open(url) as store:
        return url, populate(store)
