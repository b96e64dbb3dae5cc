from __future__ import annotations

from pathlib import Path

import pytest

from compat.harness.classify import SuiteOutcome, classify
from compat.model import (
    CheckKind,
    CheckResult,
    CheckVerdict,
    Combo,
    ComboResult,
    Verdict,
    overall,
    worst,
)
from compat.smoke import VERDICTS
from compat.targets.sysdeps import install_command, missing_libraries, packages_for
from compat.targets.target import PackageManager
from tests.helpers.harness import (
    combo_of_pins,
    done_event,
    passing_suite,
    pin_for,
    result_event,
    runner_stdout,
    start_event,
    write_wheel,
)

GLIBC_GOMP = "ImportError: libgomp.so.1: cannot open shared object file: No such file or directory"
MUSL_GOMP = (
    "ImportError: Error loading shared library libgomp.so.1: No such file or directory "
    "(needed by /x/lightgbm/lib/lib_lightgbm.so)"
)


def _classify(
    stdout: str,
    *,
    code: int | None = 0,
    timed_out: bool = False,
    stderr: str = "",
    manager: PackageManager | None = PackageManager.APT,
    libc: str = "glibc",
) -> SuiteOutcome:
    return classify(
        stdout,
        stderr,
        exit_code=code,
        timed_out=timed_out,
        elapsed=3.0,
        package_manager=manager,
        libc=libc,
    )


def test_all_checks_pass() -> None:
    outcome = _classify(passing_suite("import numpy", "numpy core"))
    assert outcome.verdict is Verdict.PASS
    assert [c.name for c in outcome.checks] == ["import numpy", "numpy core"]
    assert outcome.error is None
    assert outcome.failed_check is None


def test_worst_check_wins_and_names_the_first_culprit() -> None:
    out = runner_stdout(
        start_event("a"),
        result_event("a", "runtime-error", "ValueError: bad"),
        start_event("b"),
        result_event("b", "import-error", "ImportError: numpy.core.multiarray failed"),
        start_event("c"),
        result_event("c", "runtime-error", "TypeError: worse?"),
        start_event("d"),
        result_event("d", "skipped"),
        done_event(),
    )
    outcome = _classify(out)
    # runtime-error ranks worse than import-error in Verdict's order
    assert outcome.verdict is Verdict.RUNTIME_ERROR
    assert outcome.failed_check == "a"
    assert outcome.error == "ValueError: bad"
    assert outcome.checks[3].verdict is CheckVerdict.SKIPPED


def test_runner_killed_by_a_signal_blames_the_check_in_flight() -> None:
    out = runner_stdout(
        start_event("import numpy"), result_event("import numpy"), start_event("numpy core")
    )
    outcome = _classify(out + "Fatal Python error: Segmentation fault\n", code=139)
    assert outcome.verdict is Verdict.CRASH
    assert outcome.failed_check == "numpy core"
    assert "SIGSEGV" in (outcome.error or "")
    assert "Segmentation fault" in outcome.log


def test_negative_exit_code_is_a_signal_too() -> None:
    outcome = _classify(runner_stdout(start_event("x")), code=-11)
    assert outcome.verdict is Verdict.CRASH
    assert "SIGSEGV" in (outcome.error or "")


def test_runner_that_dies_before_any_check_is_a_crash_of_the_runner() -> None:
    outcome = _classify("", code=1, stderr="Traceback...\nModuleNotFoundError: No module named 'x'")
    assert outcome.verdict is Verdict.CRASH
    assert outcome.failed_check == "smoke-runner"
    assert "No module named 'x'" in (outcome.error or "")


def test_timeout_blames_the_check_in_flight() -> None:
    outcome = _classify(runner_stdout(start_event("hang")), code=124, timed_out=True)
    assert outcome.verdict is Verdict.TIMEOUT
    assert outcome.failed_check == "hang"


def test_check_timeout_reported_by_the_runner() -> None:
    outcome = _classify(
        runner_stdout(
            start_event("slow"), result_event("slow", "timeout", "no answer in 5s"), done_event()
        )
    )
    assert outcome.verdict is Verdict.TIMEOUT


def test_exit_zero_without_done_is_a_runtime_error() -> None:
    outcome = _classify(runner_stdout(start_event("a"), result_event("a")), code=0)
    assert outcome.verdict is Verdict.RUNTIME_ERROR


def test_noise_from_c_code_is_kept_in_the_log_not_parsed() -> None:
    out = "OpenBLAS warning: something\n" + passing_suite("a") + "{not json\n"
    outcome = _classify(out)
    assert outcome.verdict is Verdict.PASS
    assert "OpenBLAS warning" in outcome.log
    assert "{not json" in outcome.log


@pytest.mark.parametrize(
    ("text", "manager", "libc", "expected"),
    [
        (GLIBC_GOMP, PackageManager.APT, "glibc", ("libgomp1",)),
        (GLIBC_GOMP, PackageManager.APK, "musl", ("libgomp",)),
        (GLIBC_GOMP, PackageManager.DNF, "glibc", ("libgomp",)),
        (MUSL_GOMP, None, "musl", ("libgomp",)),  # no package manager: named for the libc
        (MUSL_GOMP, None, "glibc", ("libgomp1",)),
    ],
)
def test_missing_library_maps_to_the_distro_package(
    text: str, manager: PackageManager | None, libc: str, expected: tuple[str, ...]
) -> None:
    out = runner_stdout(
        start_event("import lightgbm"),
        result_event("import lightgbm", "import-error", text),
        done_event(),
    )
    outcome = _classify(out, manager=manager, libc=libc)
    assert outcome.verdict is Verdict.IMPORT_ERROR
    assert outcome.missing_libraries == ("libgomp.so.1",)
    assert outcome.system_deps == expected
    assert expected[0] in (outcome.error or "")


def test_library_named_only_in_the_log_is_found() -> None:
    out = runner_stdout(
        start_event("import x"),
        result_event(
            "import x", "import-error", "ImportError: cannot load", log="..." + GLIBC_GOMP
        ),
        done_event(),
    )
    assert _classify(out).system_deps == ("libgomp1",)


def test_sysdeps_table() -> None:
    text = (
        "libstdc++.so.6: cannot open shared object file\n"
        "Error loading shared library libgfortran.so.5: No such file\n"
        "libunknown.so.9: cannot open shared object file\n"
    )
    libs = missing_libraries(text)
    assert libs == ("libstdc++.so.6", "libunknown.so.9", "libgfortran.so.5")
    assert packages_for(libs, PackageManager.APT) == ("libstdc++6", "libgfortran5")
    assert packages_for(libs, PackageManager.APK) == ("libstdc++", "libgfortran")
    assert "apt-get install" in install_command(PackageManager.APT, ["libgomp1"])
    assert install_command(PackageManager.APK, ["libgomp"]) == "apk add --no-cache libgomp"


def test_worst_follows_the_verdict_order() -> None:
    assert worst([]) is Verdict.PASS
    assert worst([Verdict.IMPORT_ERROR, Verdict.CRASH, Verdict.PASS]) is Verdict.CRASH
    assert worst([Verdict.TIMEOUT, Verdict.CRASH]) is Verdict.TIMEOUT
    checks = [CheckResult(name="s", verdict=CheckVerdict.SKIPPED, duration=0)]
    assert overall(checks) == (Verdict.PASS, None)


def test_results_round_trip_through_json(tmp_path: Path) -> None:
    c = combo_of_pins(pin_for(write_wheel(tmp_path, "tiny", "1.0")))
    r = ComboResult(
        combo=c,
        verdict=Verdict.IMPORT_ERROR,
        checks=(
            CheckResult(
                name="import tiny",
                verdict=CheckVerdict.IMPORT_ERROR,
                duration=0.1,
                error="ImportError: x",
                log="tb",
            ),
        ),
        error="ImportError: x",
        failed_check="import tiny",
        duration=1.25,
        system_deps=("libgomp1",),
        added_system_deps=(),
        backend="docker",
        image_id="sha256:abc",
        log="all",
    )
    assert ComboResult.from_json(r.to_json()) == r


def test_a_check_error_is_listed_but_never_makes_the_combination_fail() -> None:
    out = runner_stdout(
        start_event("a"),
        result_event("a", "pass"),
        start_event("lightgbm+scikit-learn:sklearn-api"),
        result_event(
            "lightgbm+scikit-learn:sklearn-api",
            "check-error",
            "TypeError: fit() got an unexpected keyword argument 'callbacks'",
        ),
        done_event(),
    )
    outcome = _classify(out)
    assert outcome.verdict is Verdict.PASS
    assert outcome.failed_check is None
    assert outcome.checks[1].verdict is CheckVerdict.CHECK_ERROR
    assert CheckVerdict.CHECK_ERROR.as_verdict() is None
    combo_result = ComboResult(
        combo=Combo(target="t", requested=(), pins=()),
        verdict=outcome.verdict,
        checks=tuple(outcome.checks),
    )
    assert [c.name for c in combo_result.check_errors] == ["lightgbm+scikit-learn:sklearn-api"]

    with_failure = _classify(
        runner_stdout(
            start_event("b"),
            result_event("b", "check-error", "AttributeError: module 'x' has no attribute 'y'"),
            start_event("c"),
            result_event("c", "runtime-error", "AssertionError: wrong"),
            done_event(),
        )
    )
    assert with_failure.verdict is Verdict.RUNTIME_ERROR
    assert with_failure.failed_check == "c"


def test_check_verdicts_are_the_smoke_suites_own() -> None:
    # the suite (stdlib only) owns the vocabulary; the host's enum must say the same
    # words in the same order, or a verdict the runner reports could not be read
    assert tuple(v.value for v in CheckVerdict) == VERDICTS
    for verdict in CheckVerdict:
        mapped = verdict.as_verdict()
        assert mapped is None or mapped.value in {v.value for v in Verdict}


def test_a_failing_check_naming_an_unrequested_dependency_suggests_a_cap() -> None:
    import dataclasses

    from packaging.utils import canonicalize_name

    from compat.harness.classify import unrequested_notes
    from tests.helpers.deep import combo_of_versions

    stack = combo_of_versions({"pandas": "2.2.3", "python-dateutil": "4.0.0", "numpy": "2.0.2"})
    stack = dataclasses.replace(stack, requested=(canonicalize_name("pandas"),))

    def check(name: str, verdict: CheckVerdict) -> CheckResult:
        return CheckResult(name=name, verdict=verdict, duration=0.1)

    notes = unrequested_notes(
        stack,
        [
            check("pandas+python-dateutil:dateutil-time-zones", CheckVerdict.RUNTIME_ERROR),
            check("import:python-dateutil", CheckVerdict.IMPORT_ERROR),
            check("pandas+numpy:groupby-agg", CheckVerdict.PASS),  # passing: says nothing
            check("pandas:zoneinfo-time-zones", CheckVerdict.SKIPPED),
        ],
    )
    assert notes == (
        "pandas+python-dateutil:dateutil-time-zones implicates python-dateutil 4.0.0, which "
        "was not requested (the resolver chose it): to test the requested pins apart from "
        "it, add 'python-dateutil<4.0.0'",
    )
    both = dataclasses.replace(stack, requested=tuple(map(canonicalize_name, ("pandas", "numpy"))))
    assert unrequested_notes(both, [check("pandas+numpy:x", CheckVerdict.CRASH)]) == ()
    # a timeout is undecided: it suggests no cap
    slow = check("pandas+python-dateutil:dateutil-time-zones", CheckVerdict.TIMEOUT)
    assert unrequested_notes(stack, [slow]) == ()


def test_each_check_has_the_kind_its_events_give() -> None:
    out = runner_stdout(
        start_event("import:numpy"),
        result_event("import:numpy"),
        start_event("numpy:core"),
        result_event("numpy:core"),
        start_event("user:mine.py"),
        result_event("user:mine.py"),
        {"event": "reuse", "check": "numpy:never-offered"},
        start_event("import:scipy"),
    )
    outcome = _classify(out, code=139)
    assert [(c.name, c.kind) for c in outcome.checks] == [
        ("import:numpy", CheckKind.IMPORT),
        ("numpy:core", CheckKind.SMOKE),
        ("user:mine.py", CheckKind.USER),
        # a reuse the harness never offered is the machinery's failure
        ("numpy:never-offered", CheckKind.RUNNER),
        # the import in flight when the runner died is still an import check
        ("import:scipy", CheckKind.IMPORT),
    ]


def test_a_runner_that_died_between_checks_is_a_check_of_the_machinery() -> None:
    outcome = _classify(runner_stdout(start_event("exec"), result_event("exec")), code=1)
    assert [(c.name, c.kind) for c in outcome.checks] == [
        ("exec", CheckKind.USER),
        ("smoke-runner", CheckKind.RUNNER),
    ]
