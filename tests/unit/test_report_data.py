"""ReportData built from scan results, and the sample scan other report tests share."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime

from packaging.tags import Tag
from packaging.utils import canonicalize_name
from packaging.version import Version

from compat.model import CheckResult, CheckVerdict, Combo, ComboResult, FileKind, Pin, Verdict
from compat.report import BaseReport, LockStatus, ReportData
from compat.report.attribution import Finding
from compat.report.view import Anchors, build, combinations, heatmap
from compat.targets.target import Libc, Target

EVIL = "<script>alert('x')</script>"


def make_target(name: str, *, libc: Libc = Libc.GLIBC, python: str = "3.11.2") -> Target:
    return Target(
        name=name,
        image=f"local/{name}:latest",
        image_id=f"sha256:{hashlib.sha256(name.encode()).hexdigest()}",
        python_version=Version(python),
        libc=libc,
        libc_version=(2, 36) if libc is Libc.GLIBC else (1, 2),
        tags=(Tag("cp311", "cp311", "manylinux_2_17_x86_64"),),
        probed=True,
    )


def make_result(
    target: Target,
    versions: Mapping[str, str],
    verdict: Verdict = Verdict.PASS,
    *,
    error: str | None = None,
    log: str = "",
    extra: Mapping[str, str] | None = None,
    duration: float = 1.5,
    check: str = "import:numpy",
    system_deps: tuple[str, ...] = (),
) -> ComboResult:
    every = {**versions, **(extra or {})}
    pins = tuple(
        sorted(
            (
                Pin(
                    name=canonicalize_name(n),
                    version=Version(v),
                    filename=f"{n}-{v}-py3-none-any.whl",
                    url=f"https://files.example/{n}-{v}.whl",
                    sha256=hashlib.sha256(f"{n}{v}".encode()).hexdigest(),
                    kind=FileKind.WHEEL,
                )
                for n, v in every.items()
            ),
            key=lambda p: p.name,
        )
    )
    combo = Combo(
        target=target.key, pins=pins, requested=tuple(canonicalize_name(n) for n in versions)
    )
    failed = None if verdict.ok else check
    as_check = {
        Verdict.PASS: CheckVerdict.PASS,
        Verdict.CRASH: CheckVerdict.CRASH,
        Verdict.RUNTIME_ERROR: CheckVerdict.RUNTIME_ERROR,
        Verdict.TIMEOUT: CheckVerdict.TIMEOUT,
    }.get(verdict, CheckVerdict.IMPORT_ERROR)
    checks = (CheckResult(name=check, verdict=as_check, duration=0.5, error=error),)
    return ComboResult(
        combo=combo,
        verdict=verdict,
        checks=checks,
        error=error,
        failed_check=failed,
        duration=duration,
        system_deps=system_deps,
        log=log or ("ok\n" if verdict.ok else f"Traceback (most recent call last):\n{error}\n"),
    )


ABI = "ValueError: numpy.dtype size changed, may indicate binary incompatibility"
GOMP = "OSError: libgomp.so.1: cannot open shared object file: No such file or directory"


def sample_results(target: Target) -> list[ComboResult]:
    """numpy x pandas x lightgbm on a glibc base: pandas 2.1.4 breaks under numpy 2,
    lightgbm 4.5.0 lacks libgomp, one error line is hostile HTML."""
    out = []
    for np_ in ("1.26.4", "2.0.2"):
        for pd in ("2.1.4", "2.2.3"):
            for lgb in ("4.3.0", "4.5.0"):
                versions = {"numpy": np_, "pandas": pd, "lightgbm": lgb}
                extra = {"python-dateutil": "2.9.0.post0", "six": "1.16.0"}
                if np_.startswith("2") and pd == "2.1.4":
                    out.append(
                        make_result(
                            target,
                            versions,
                            Verdict.IMPORT_ERROR,
                            error=ABI,
                            extra=extra,
                            check="import:pandas",
                        )
                    )
                elif lgb == "4.5.0":
                    out.append(
                        make_result(
                            target,
                            versions,
                            Verdict.IMPORT_ERROR,
                            error=GOMP,
                            extra=extra,
                            check="import:lightgbm",
                            system_deps=("libgomp1",),
                        )
                    )
                else:
                    out.append(make_result(target, versions, extra=extra))
    # Only numpy 2.1.3 with pandas 2.2.3 tried: lightgbm 4.3.0 crashes there.
    out.append(
        make_result(
            target,
            {"numpy": "2.1.3", "pandas": "2.2.3", "lightgbm": "4.3.0"},
            Verdict.CRASH,
            check="lightgbm+numpy:native-train",
            error=f"SIGSEGV in {EVIL} & friends",
            log=f"line one\n{EVIL}\n</pre></details><b>not bold</b>\n",
        )
    )
    return out


def sample_report() -> ReportData:
    bookworm = make_target("bookworm")
    musl = make_target("musl", libc=Libc.MUSL)
    trixie = make_target("trixie", python="3.13.5")
    bookworm_results = sample_results(bookworm)
    good = bookworm_results[0].combo
    musl_results = [
        make_result(musl, {"numpy": "2.0.2", "pandas": "2.2.3"}),
        make_result(
            musl,
            {"numpy": "1.26.4", "pandas": "2.2.3"},
            Verdict.CRASH,
            error="signal 11 (SIGSEGV): DT_RELR needs musl >= 1.2.4",
        ),
    ]
    return ReportData(
        title="ML stack compatibility",
        bases=(
            BaseReport.from_results(
                bookworm,
                bookworm_results,
                image_size=605_123_456,
                added_size=482_000_000,
                lockfile="numpy==1.26.4 \\\n    --hash=sha256:abc\npandas==2.2.3\n",
                lock=LockStatus(
                    combo_id=good.id,
                    requested=tuple((n, good.version_of(n)) for n in good.requested),
                    pins=tuple((p.name, p.version) for p in good.pins),
                    verified=datetime(2026, 11, 30, 22, 5, tzinfo=UTC),
                ),
                findings=(
                    Finding(
                        packages=(
                            (canonicalize_name("numpy"), Version("2.0.2")),
                            (canonicalize_name("pandas"), Version("2.1.4")),
                        ),
                        line=f"pandas 2.1.4 with numpy >= 2 {EVIL}",
                    ),
                ),
            ),
            BaseReport.from_results(
                musl, musl_results, image_size=402_000_000, added_size=295_000_000
            ),
            BaseReport.from_results(
                trixie,
                [
                    make_result(
                        trixie, {"numpy": "1.26.4", "pandas": "2.1.4"}, Verdict.NO_WHEEL, error="x"
                    )
                ],
                image_size=None,
            ),
        ),
    )


def test_from_results_keeps_every_value_the_report_shows() -> None:
    target = make_target("bookworm")
    results = sample_results(target)
    base = BaseReport.from_results(target, results, image_size=1, lockfile="x==1\n")
    assert base.name == "bookworm"
    assert base.image == "local/bookworm:latest"
    assert base.image_id == target.image_id
    assert base.python == Version("3.11.2")
    assert base.libc == "glibc 2.36"
    assert base.image_size == 1
    assert base.added_size is None
    assert base.lockfile == "x==1\n"
    assert len(base.results) == len(results)
    entry, result = base.results[-1], results[-1]
    assert entry.result_id == entry.combo_id == result.combo.id
    assert entry.requested == (
        ("numpy", Version("2.1.3")),
        ("pandas", Version("2.2.3")),
        ("lightgbm", Version("4.3.0")),
    )
    assert [n for n, _ in entry.pins] == ["lightgbm", "numpy", "pandas"]
    assert entry.verdict is Verdict.CRASH
    assert entry.failed_check == "lightgbm+numpy:native-train"
    assert [c.name for c in entry.failed] == ["lightgbm+numpy:native-train"]
    assert entry.error == result.error
    assert entry.log == result.log
    assert entry.duration == 1.5


def test_a_combination_run_twice_gets_two_distinct_result_ids() -> None:
    target = make_target("bookworm")
    once = make_result(target, {"numpy": "2.0.2"})
    again = make_result(target, {"numpy": "2.0.2"}, Verdict.TIMEOUT, error="timed out")
    base = BaseReport.from_results(target, [once, again])
    assert [e.result_id for e in base.results] == [once.combo.id, f"{once.combo.id}-2"]
    assert {e.combo_id for e in base.results} == {once.combo.id}


def test_log_falls_back_to_the_checks_output() -> None:
    target = make_target("bookworm")
    result = make_result(target, {"numpy": "2.0.2"}, Verdict.RUNTIME_ERROR, error="boom")
    quiet = ComboResult(
        combo=result.combo,
        verdict=result.verdict,
        checks=(
            CheckResult(
                name="numpy.core", verdict=CheckVerdict.RUNTIME_ERROR, duration=0.1, log="boom!"
            ),
        ),
        error="boom",
    )
    entry = BaseReport.from_results(target, [quiet]).results[0]
    assert "numpy.core (runtime-error)" in entry.log
    assert "boom!" in entry.log


def test_report_data_from_results_makes_one_base_per_run() -> None:
    a, b = make_target("a"), make_target("b")
    data = ReportData.from_results(
        [(a, sample_results(a)), (b, [])], title="t", generated="2025-01-01"
    )
    assert [base.name for base in data.bases] == ["a", "b"]
    assert data.title == "t"
    assert data.generated == "2025-01-01"
    assert data.bases[1].results == ()


def test_heatmap_counts_each_pair_of_versions() -> None:
    target = make_target("bookworm")
    base = BaseReport.from_results(target, sample_results(target))
    rows = combinations(base.results, (), Anchors())
    hm = heatmap(rows, canonicalize_name("numpy"), canonicalize_name("pandas"))
    assert hm.rows == (Version("1.26.4"), Version("2.0.2"), Version("2.1.3"))
    assert hm.cols == (Version("2.1.4"), Version("2.2.3"))
    got = {
        (str(c.row), str(c.col)): (c.passed, c.failed, c.other, c.state.value)
        for r in hm.cells
        for c in r
    }
    # lightgbm 4.5.0's missing libgomp and lightgbm's crash colour no numpy x pandas cell
    assert got == {
        ("1.26.4", "2.1.4"): (1, 0, 1, "all-pass"),
        ("1.26.4", "2.2.3"): (1, 0, 1, "all-pass"),
        ("2.0.2", "2.1.4"): (0, 2, 0, "all-fail"),
        ("2.0.2", "2.2.3"): (1, 0, 1, "all-pass"),
        ("2.1.3", "2.1.4"): (0, 0, 0, "untested"),
        ("2.1.3", "2.2.3"): (0, 0, 1, "untested"),
    }
    cell = hm.cells[1][0]
    assert cell.title == (
        "numpy 2.0.2 with pandas 2.1.4: 0 of 2 combinations pass; failing by check import:pandas"
    )
    crash = heatmap(rows, canonicalize_name("numpy"), canonicalize_name("lightgbm"))
    assert crash.cells[2][0].state.value == "all-fail"  # numpy 2.1.3 x lightgbm 4.3.0


def test_smallest_working_image_needs_a_passing_combination() -> None:
    report = build(sample_report())
    assert [b.smallest for b in report.bases] == [False, True, False]
    smaller_but_broken = make_target("tiny")
    data = ReportData(
        bases=(
            *sample_report().bases,
            BaseReport.from_results(
                smaller_but_broken,
                [make_result(smaller_but_broken, {"numpy": "2.0.2"}, Verdict.CRASH, error="x")],
                image_size=1_000,
            ),
        )
    )
    assert [b.smallest for b in build(data).bases] == [False, True, False, False]


def test_a_lone_working_base_is_not_called_the_smallest() -> None:
    data = sample_report()
    alone = ReportData(bases=data.bases[:1])
    assert [b.smallest for b in build(alone).bases] == [False]
