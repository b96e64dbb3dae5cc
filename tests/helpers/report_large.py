"""A results database of a 10-package matrix on one base, as a team's stack gives it:
200 combinations over six releases of each package, scanned and half of them run
again by a nightly, each with 24 transitive dependencies and a smoke suite's checks;
about a quarter fail with long logs: lightgbm 2.0.0 inside scikit-learn >= 1.3.0 in
a check that needs scipy too, and statsmodels 1.0.0's whole-package import alone."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from unittest import mock

from compat.model import CheckKind, CheckResult, CheckVerdict, Combo, ComboResult, Verdict
from compat.store import Store
from compat.targets.target import Target
from tests.helpers.report import make_result
from tests.helpers.results import DEBIAN_ID, make_target

MATRIX = "team-stack"
PACKAGES = (
    "numpy",
    "scipy",
    "pandas",
    "matplotlib",
    "scikit-learn",
    "lightgbm",
    "statsmodels",
    "seaborn",
    "xgboost",
    "pyarrow",
)
RELEASES = ("1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0", "2.0.0")
# what the resolver adds under the matrix packages
TRANSITIVE = tuple(f"dependency-{n:02d}" for n in range(24))
SITE = "/home/compat/venv/lib/python3.11/site-packages"
TAGS = "AttributeError: 'super' object has no attribute '__sklearn_tags__'"


def combinations(target: Target, count: int) -> list[ComboResult]:
    """``count`` distinct combinations of releases drawn with a fixed seed (every
    pair of releases of every two packages is covered several times over), each
    with its results."""
    draw = random.Random(22)
    found: dict[str, ComboResult] = {}
    while len(found) < count:
        versions = {p: draw.choice(RELEASES) for p in PACKAGES}
        extra = {n: f"{1 + len(found) % 3}.{k % 5}.0" for k, n in enumerate(TRANSITIVE)}
        combo = make_result(target, versions, extra=extra).combo
        found.setdefault(combo.id, result(target, combo))
    return list(found.values())


def _traceback(*tops: str, error: str) -> str:
    lines = [
        "Traceback (most recent call last):",
        '  File "/opt/compat/smoke/checks/x.py", line 40, in check',
    ]
    for depth, top in enumerate(tops * 6):
        lines += [
            f'  File "{SITE}/{top}/module_{depth}.py", line {100 + depth}, in call_{depth}',
            "    return self._inner(x, y)",
        ]
    return "\n".join([*lines, error, ""])


def _sweep_log(error: str, *, seconds: float) -> str:
    """What a whole-package import that failed writes (compat.smoke.modules)."""
    lines = [
        "statsmodels 1.0.0: 412 modules, 371 imported, 120 not applicable, 0 not attributed, "
        f"11 failed ({seconds:.1f} s)",
        f"failed: {error}",
        "  10 more with the same error: "
        + ", ".join(f"statsmodels.tsa.module_{n}" for n in range(10)),
        "not applicable:",
        *(
            f"  statsmodels.optional_{n}: needs optional_dependency_{n}, not installed"
            for n in range(120)
        ),
        "--- statsmodels.tsa._stl ---",
        _traceback("statsmodels", error=error),
    ]
    return "\n".join(lines)


def _checks(combo: Combo) -> tuple[tuple[CheckResult, ...], Verdict, CheckResult | None]:
    """A smoke suite's checks: an import per package and two checks per pair."""
    versions = {str(p.name): str(p.version) for p in combo.pins}
    checks = [
        CheckResult(
            name=f"import:{p}", kind=CheckKind.IMPORT, verdict=CheckVerdict.PASS, duration=0.4
        )
        for p in PACKAGES
    ]
    for a, b in zip(PACKAGES, PACKAGES[1:] + PACKAGES[:1], strict=True):
        for kind in ("api", "roundtrip"):
            checks.append(
                CheckResult(name=f"{a}+{b}:{kind}", verdict=CheckVerdict.PASS, duration=0.7)
            )
    failing: CheckResult | None = None
    if versions["lightgbm"] == "2.0.0" and versions["scikit-learn"] >= "1.3.0":
        failing = CheckResult(
            name="lightgbm+scipy+scikit-learn:sklearn-api-sparse",
            verdict=CheckVerdict.RUNTIME_ERROR,
            duration=1.2,
            error=TAGS,
            log=f"[LightGBM] [Info] Start training from score {int(combo.id, 16) % 1000}\n"
            + "".join(f"[LightGBM] [Info] iteration {n}: 0.{n:04d}\n" for n in range(300))
            + _traceback("lightgbm", "sklearn", error=TAGS),
        )
    elif versions["statsmodels"] == "1.0.0":
        error = "statsmodels.tsa._stl: ImportError: cannot import name 'x' from 'statsmodels.tsa'"
        failing = CheckResult(
            name="import:statsmodels",
            kind=CheckKind.IMPORT,
            verdict=CheckVerdict.IMPORT_ERROR,
            duration=2.0,
            error=error + "\n" + "\n".join(f"  and in statsmodels.module_{n}" for n in range(40)),
            log=_sweep_log(error, seconds=int(combo.id, 16) % 900 / 10),
        )
    if failing is None:
        return tuple(checks), Verdict.PASS, None
    return (*checks, failing), Verdict(failing.verdict.value), failing


def result(target: Target, combo: Combo) -> ComboResult:
    checks, verdict, failing = _checks(combo)
    return ComboResult(
        combo=combo,
        verdict=verdict,
        checks=checks,
        error=failing.error if failing else None,
        failed_check=failing.name if failing else None,
        duration=42.0,
        backend="docker",
        image_id=target.image_id,
    )


def populate_large(store: Store, *, count: int = 200) -> list[ComboResult]:
    """A scan of ``count`` combinations and a nightly run of half of them again."""
    target = make_target("debian-slim", "local/debian-python:bookworm", DEBIAN_ID)
    results = combinations(target, count)
    moment = [datetime(2026, 11, 20, 1, 0, tzinfo=UTC)]

    def now() -> datetime:
        moment[0] += timedelta(seconds=1)
        return moment[0]

    with mock.patch("compat.store.store.now", now):
        for strategy, chosen in (("pairwise", results), ("nightly", results[::2])):
            run = store.start_run(target, backend="docker", matrix_name=MATRIX, strategy=strategy)
            for each in chosen:
                store.record(run, target, each)
            store.finish_run(run)
    return results
