"""The smoke runner as the harness uses it: a subprocess writing JSON events,
run here with the host's Python on tiny fake site directories.

The runner is started with ``-S`` so that the host's own site-packages (which
may hold numpy) stay out of the combination: only the --site dirs count.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from compat.smoke import RUNNER, VERDICTS, isolate, runner_argv
from compat.smoke.checks import builtin_checks
from compat.smoke.tree import Node, plan
from tests.helpers.smoke import assert_segfault, make_dist, run_runner

RESULT_KEYS = {"event", "check", "kind", "verdict", "duration", "error", "log", "inputs", "cpu"}


def write_checks(directory: Path, **scripts: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, source in scripts.items():
        (directory / f"{name}.py").write_text(textwrap.dedent(source))
    return directory


@pytest.fixture
def site_dir(tmp_path: Path) -> Path:
    site = tmp_path / "site-a"
    make_dist(
        site,
        "good-pkg",
        "good_pkg",
        """
        import os, sys
        print("noise on stdout from import", flush=True)
        print('{"event": "done", "counts": {}}', flush=True)
        os.write(1, b"raw bytes on fd 1\\n")
        sys.stderr.write("noise on stderr\\n")
        VALUE = 42
        """,
    )
    make_dist(
        site,
        "broken-pkg",
        "broken_pkg",
        """
        raise ImportError("libfoo.so.1: cannot open shared object file: No such file or directory")
        """,
    )
    return site


@pytest.mark.slow
def test_events_follow_the_contract(site_dir: Path, tmp_path: Path) -> None:
    checks = write_checks(
        tmp_path / "checks",
        passing="""
            import good_pkg
            print("check output")
            assert good_pkg.VALUE == 42
        """,
    )
    run = run_runner(
        "--site", str(site_dir), "--package", "good-pkg", "--checks-dir", str(checks),
        "--only", "user:*", "--only", "numpy:copy-semantics", "--only", "exec",
        "--exec", "--", sys.executable, "-c", "pass",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    kinds = [(e["event"], e.get("check"), e.get("kind")) for e in run.events]
    assert kinds == [
        ("start", "import:good-pkg", "import"),
        ("result", "import:good-pkg", "import"),
        # every distribution of the site dirs is part of the combination
        ("start", "import:broken-pkg", "import"),
        ("result", "import:broken-pkg", "import"),
        # a built-in check, skipped: numpy is not in the combination
        ("start", "numpy:copy-semantics", "smoke"),
        ("result", "numpy:copy-semantics", "smoke"),
        ("start", "user:passing.py", "user"),
        ("result", "user:passing.py", "user"),
        ("start", "exec", "user"),
        ("result", "exec", "user"),
        ("done", None, None),
    ]
    for event in run.events:
        if event["event"] == "result":
            assert set(event) == RESULT_KEYS
            assert isinstance(event["duration"], float)
            # a check that ran in processes of its own has their CPU time
            ran_alone = event["check"] == "user:passing.py" or event["kind"] == "import"
            assert isinstance(event["cpu"], float) if ran_alone else event["cpu"] is None
        elif event["event"] == "start":
            assert set(event) == {"event", "check", "kind"}
    assert run.verdict("import:good-pkg") == "pass"
    import_log = run.results["import:good-pkg"]["log"]
    assert import_log.startswith("good-pkg 1.0: 1 modules, 1 imported")
    assert f"imported from {site_dir / 'good_pkg' / '__init__.py'}" in import_log
    assert "noise on stdout from import" in import_log
    assert "raw bytes on fd 1" in import_log
    assert "noise on stderr" in import_log
    assert '"event": "done"' in import_log  # a fake event printed by the import stays in its log
    # the check's own process imported good_pkg: its noise is in the check's log
    assert run.results["user:passing.py"]["log"].endswith("check output\n")
    assert run.results["user:passing.py"]["inputs"] == {"good-pkg": "1.0"}
    assert run.results["import:good-pkg"]["inputs"] == {"good-pkg": "1.0"}
    counts = {"pass": 3, "import-error": 1, "skipped": 1}
    assert run.done["counts"] == {**dict.fromkeys(VERDICTS, 0), **counts}
    assert run.done["duration"] > 0


@pytest.mark.slow
def test_import_error_keeps_its_first_line_and_dependents_are_skipped(
    site_dir: Path, tmp_path: Path
) -> None:
    checks = write_checks(tmp_path / "checks", uses_broken="import broken_pkg\n")
    run = run_runner(
        "--site", str(site_dir), "--package", "broken-pkg", "--package", "good-pkg",
        "--package", "numpy", "--checks-dir", str(checks), "--only", "numpy:*",
        "--only", "user:*",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    broken = run.results["import:broken-pkg"]
    assert broken["verdict"] == "import-error"
    assert broken["error"] == (
        "broken_pkg: ImportError: libfoo.so.1: cannot open shared object file: "
        "No such file or directory (at __init__.py:2)"
    )
    assert "Traceback" in broken["log"]
    assert "broken_pkg/__init__.py" in broken["log"]
    assert "isolate.py" not in broken["log"]  # the runner's own frames are trimmed
    assert run.verdict("import:good-pkg") == "pass"
    missing = run.results["import:numpy"]
    assert missing["verdict"] == "import-error"
    assert "No module named 'numpy'" in missing["error"]
    assert missing["log"].startswith("numpy (no distribution): 4 modules, 0 imported")
    # numpy's checks are reported, as skipped, naming the failed import.
    numpy_checks = [r for name, r in run.results.items() if name.startswith("numpy:")]
    assert numpy_checks
    assert {r["verdict"] for r in numpy_checks} == {"skipped"}
    assert {r["error"] for r in numpy_checks} == {"needs numpy: failed to import"}
    # Inside a user check, any exception is a runtime error, even an ImportError.
    assert run.verdict("user:uses_broken.py") == "runtime-error"


@pytest.mark.slow
def test_imports_run_in_dependency_order(site_dir: Path) -> None:
    run = run_runner(
        "--site", str(site_dir), "--package", "good_pkg", "--package", "scikit-learn",
        "--package", "Pandas", "--package", "numpy==2.0.2", "--only", "none",
    )  # fmt: skip
    starts = [e["check"] for e in run.events if e["event"] == "start"]
    assert starts == [
        "import:numpy",
        "import:pandas",
        "import:scikit-learn",
        "import:good-pkg",
        "import:broken-pkg",  # not asked for, but installed in the combination's site
    ]


@pytest.mark.slow
def test_checks_without_their_packages_are_skipped(site_dir: Path) -> None:
    run = run_runner(
        "--site", str(site_dir), "--package", "good-pkg", "--only", "pandas+matplotlib:*"
    )
    results = list(run.results.values())
    plotting = [c for c in builtin_checks() if c.name.startswith("pandas+matplotlib:")]
    # the site's two imports and pandas+matplotlib's checks
    assert len(results) == 2 + len(plotting)
    plots = [r for r in results if r["check"].startswith("pandas+matplotlib:")]
    assert all(r["verdict"] == "skipped" for r in plots)
    assert plots[0]["error"] == "needs pandas, matplotlib: not in the combination"


@pytest.mark.slow
def test_crash_of_one_check_is_reported_and_the_suite_goes_on(
    site_dir: Path, tmp_path: Path
) -> None:
    checks = write_checks(
        tmp_path / "checks",
        a_segfault="""
            import ctypes
            print("about to crash")
            ctypes.string_at(0)
        """,
        b_abort="import os\nos.abort()\n",
        c_exits="import os\nos._exit(7)\n",
        d_after="import good_pkg\n",
    )
    run = run_runner("--site", str(site_dir), "--checks-dir", str(checks), "--only", "user:*")
    assert run.returncode == 0, run.stderr
    assert_segfault(run.results["user:a_segfault.py"], "about to crash", "a_segfault.py")
    assert run.results["user:b_abort.py"]["error"].startswith("killed by signal SIGABRT")
    exits = run.results["user:c_exits.py"]
    assert exits["verdict"] == "crash"
    assert exits["error"] == "exited with status 7 before reporting"
    assert run.verdict("user:d_after.py") == "pass"
    assert run.done["counts"]["crash"] == 3


@pytest.mark.slow
def test_timeout_kills_the_check_and_its_children_quickly(site_dir: Path, tmp_path: Path) -> None:
    marker = tmp_path / "grandchild.pid"
    checks = write_checks(
        tmp_path / "checks",
        hangs=f"""
            import subprocess, time
            child = subprocess.Popen(["sleep", "300"])
            open({str(marker)!r}, "w").write(str(child.pid))
            def wait_forever():
                time.sleep(300)
            wait_forever()
        """,
        then_passes="pass\n",
    )
    run = run_runner(
        "--site", str(site_dir), "--checks-dir", str(checks), "--only", "user:*",
        "--timeout", "1",
    )  # fmt: skip
    hung = run.results["user:hangs.py"]
    assert hung["verdict"] == "timeout"
    assert hung["error"] == "did not finish within 1 s"
    assert 0.9 < hung["duration"] < 2.5
    assert "wait_forever" in hung["log"]  # where it hung, dumped just before the kill
    assert run.verdict("user:then_passes.py") == "pass"
    assert run.wall < 8
    grandchild = int(marker.read_text())
    assert not _alive(grandchild)


@pytest.mark.slow
def test_a_check_runs_with_no_thread_of_the_runner_and_dying_once_its_time_is_up_is_a_timeout(
    site_dir: Path, tmp_path: Path
) -> None:
    # no watchdog thread beside the check: one reading the frames of a running
    # check to say where it hung could crash it (and a thread makes a fork unsafe)
    checks = write_checks(
        tmp_path / "checks",
        alone="""
            import os
            threads = os.listdir("/proc/self/task")
            assert threads == [str(os.getpid())], threads
        """,
        # crashes the moment it is told where it is: time is up, whatever comes next
        dies_when_asked="""
            import os, signal, time
            signal.signal(signal.SIGUSR1, lambda *_: os.kill(os.getpid(), signal.SIGSEGV))
            time.sleep(30)
        """,
    )
    run = run_runner(
        "--site", str(site_dir), "--checks-dir", str(checks), "--only", "user:*",
        "--timeout", "1",
    )  # fmt: skip
    assert run.verdict("user:alone.py") == "pass", run.results["user:alone.py"]
    dies = run.results["user:dies_when_asked.py"]
    assert dies["verdict"] == "timeout", dies
    assert dies["error"] == "did not finish within 1 s"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie waiting for init to reap it is as good as dead.
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()


@pytest.mark.slow
def test_user_check_outcomes(site_dir: Path, tmp_path: Path) -> None:
    checks = write_checks(
        tmp_path / "checks",
        asserts="x = 1\nassert x == 2\n",
        raises="raise RuntimeError('boom\\nsecond line')\n",
        skips="import unittest\nraise unittest.SkipTest('no GPU here')\n",
        exit_zero="import sys\nsys.exit(0)\n",
        exit_three="import sys\nsys.exit(3)\n",
        functions="""
            calls = []
            def test_one():
                calls.append(1)
            def test_two():
                assert calls == [1], calls
                raise ValueError("second test failed")
            def helper_not_a_test():
                raise AssertionError("never called")
        """,
        fixtures="def test_needs(tmp_path):\n    pass\n",
        _private_helper="raise SystemExit('never run: starts with _')\n",
    )
    (checks / "notes.txt").write_text("not a check")
    run = run_runner("--site", str(site_dir), "--checks-dir", str(checks), "--only", "user:*")
    results = run.results
    assert results["user:asserts.py"]["verdict"] == "runtime-error"
    assert results["user:asserts.py"]["error"] == "AssertionError at asserts.py:2: assert x == 2"
    assert results["user:raises.py"]["error"] == "RuntimeError: boom"
    assert "second line" in results["user:raises.py"]["log"]
    assert results["user:skips.py"]["verdict"] == "skipped"
    assert results["user:skips.py"]["error"] == "no GPU here"
    assert results["user:exit_zero.py"]["verdict"] == "pass"
    assert results["user:exit_three.py"]["verdict"] == "runtime-error"
    assert results["user:exit_three.py"]["error"] == "sys.exit(3)"
    assert results["user:functions.py"]["error"] == "ValueError: second test failed"
    assert results["user:fixtures.py"]["verdict"] == "runtime-error"
    assert "takes fixtures (tmp_path)" in results["user:fixtures.py"]["error"]
    assert set(results) == {
        "import:good-pkg",
        "import:broken-pkg",
        "user:asserts.py",
        "user:raises.py",
        "user:skips.py",
        "user:exit_zero.py",
        "user:exit_three.py",
        "user:functions.py",
        "user:fixtures.py",
    }


@pytest.mark.slow
def test_optimize_flag_does_not_disable_asserts(site_dir: Path, tmp_path: Path) -> None:
    checks = write_checks(tmp_path / "checks", asserts="assert False, 'must be seen'\n")
    run = run_runner(
        "--site", str(site_dir), "--checks-dir", str(checks), "--only", "user:*",
        flags=("-S", "-O"),
    )  # fmt: skip
    assert run.results["user:asserts.py"]["error"] == "AssertionError: must be seen"


@pytest.mark.slow
def test_site_dirs_compose_in_order_with_pth_files(tmp_path: Path) -> None:
    first = tmp_path / "site-1"
    second = tmp_path / "site-2"
    make_dist(first, "shadowed", "shadowed", "WHERE = 'first'\n")
    make_dist(second, "shadowed", "shadowed", "WHERE = 'second'\n")
    vendor = second / "vendor"
    make_dist(vendor, "vendored", "vendored", "FROM = 'pth dir'\n", top_level=False)
    (second / "extra.pth").write_text(
        "vendor\nimport os; os.environ['SMOKE_PTH_RAN'] = 'yes'\n# a comment\n"
    )
    checks = write_checks(
        tmp_path / "checks",
        composed="""
            import os, sys
            import shadowed, vendored
            assert shadowed.WHERE == "first", shadowed.WHERE
            assert vendored.FROM == "pth dir"
            assert os.environ["SMOKE_PTH_RAN"] == "yes"
            assert os.environ["OMP_NUM_THREADS"] == "1"
            assert os.environ["MPLBACKEND"] == "Agg"
        """,
    )
    run = run_runner(
        "--site", str(first), "--site", str(second), "--package", "vendored",
        "--checks-dir", str(checks), "--only", "user:*",
    )  # fmt: skip
    assert run.verdict("import:vendored") == "pass", run.results["import:vendored"]
    assert str(vendor) in run.results["import:vendored"]["log"]
    assert run.verdict("user:composed.py") == "pass", run.results["user:composed.py"]


@pytest.mark.slow
def test_site_dirs_come_before_the_interpreters_site_packages(tmp_path: Path) -> None:
    """Without -S the host's site-packages is on sys.path: the composed dirs win."""
    site = tmp_path / "site"
    make_dist(site, "packaging", "packaging", "__version__ = 'composed'\n")
    checks = write_checks(
        tmp_path / "checks",
        which="import packaging\nassert packaging.__version__ == 'composed'\n",
    )
    run = run_runner("--site", str(site), "--checks-dir", str(checks), "--only", "user:*", flags=())
    assert run.verdict("user:which.py") == "pass", run.results["user:which.py"]


@pytest.mark.slow
def test_exec_runs_with_the_composed_path(site_dir: Path) -> None:
    run = run_runner(
        "--site", str(site_dir), "--only", "exec", "--exec", "--", sys.executable, "-S", "-c",
        "import good_pkg, os; print('exec sees', good_pkg.VALUE, os.environ['OMP_NUM_THREADS'])",
    )  # fmt: skip
    result = run.results["exec"]
    assert result["verdict"] == "pass", result
    assert "exec sees 42 1" in result["log"]
    assert "noise on stdout from import" in result["log"]


@pytest.mark.slow
def test_exec_failure_crash_and_timeout(site_dir: Path) -> None:
    failing = run_runner(
        "--site", str(site_dir), "--only", "exec", "--exec", "--", sys.executable, "-c",
        "import sys\nfor i in range(100): print('line', i)\nsys.exit('last words')",
    )  # fmt: skip
    result = failing.results["exec"]
    assert result["verdict"] == "runtime-error"
    assert result["error"] == "exit status 1: last words"
    assert "line 99" in result["log"]
    killed = run_runner(
        "--site", str(site_dir), "--only", "exec", "--exec", "--", sys.executable, "-c",
        "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)",
    )  # fmt: skip
    assert killed.results["exec"]["verdict"] == "crash"
    assert killed.results["exec"]["error"].startswith("killed by signal SIGSEGV")
    slow = run_runner(
        "--site", str(site_dir), "--only", "exec", "--timeout", "1", "--exec", "--",
        sys.executable, "-c", "import time; time.sleep(60)",
    )  # fmt: skip
    assert slow.results["exec"]["verdict"] == "timeout"
    assert slow.wall < 8
    missing = run_runner("--only", "exec", "--exec", "--", "/no/such/command")
    assert missing.results["exec"]["verdict"] == "runtime-error"
    assert "No such file" in missing.results["exec"]["error"]


@pytest.mark.slow
def test_an_import_that_crashes_is_a_crash_and_the_imports_go_on(
    site_dir: Path, tmp_path: Path
) -> None:
    make_dist(
        site_dir,
        "crashing-pkg",
        "crashing_pkg",
        """
        import os, signal
        print("importing crashing_pkg")
        os.kill(os.getpid(), signal.SIGSEGV)
        """,
    )
    run = run_runner("--site", str(site_dir), "--package", "good-pkg", "--package", "crashing-pkg")
    assert run.returncode == 0, run.stderr
    crashed = run.results["import:crashing-pkg"]
    assert_segfault(
        crashed, "importing crashing_pkg", "crashing_pkg/__init__.py", module="crashing_pkg"
    )
    assert run.verdict("import:good-pkg") == "pass"
    # the next import runs in a fresh child
    assert run.verdict("import:broken-pkg") == "import-error"
    assert run.done["counts"]["crash"] == 1


@pytest.mark.slow
def test_import_time_limit(site_dir: Path) -> None:
    make_dist(site_dir, "slow-pkg", "slow_pkg", "import time\ntime.sleep(30)\n")
    run = run_runner(
        "--site", str(site_dir), "--package", "slow-pkg", "--package", "good-pkg",
        "--timeout", "1", "--only", "none",
    )  # fmt: skip
    assert run.verdict("import:slow-pkg") == "timeout"
    assert run.verdict("import:good-pkg") == "pass"
    assert run.wall < 8


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--site", "/no/such/dir"], "not a directory: /no/such/dir"),
        (["--checks-dir", "/no/such/dir"], "not a directory: /no/such/dir"),
        (["--exec"], "--exec needs a command"),
        (["--exec", "--"], "--exec needs a command"),
        (["--timeout", "0"], "--timeout must be positive"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_command_lines_exit_2_without_events(args: list[str], message: str) -> None:
    run = run_runner(*args)
    assert run.returncode == 2
    assert run.events == []
    assert message in run.stderr


@pytest.mark.slow
def test_runner_argv_builds_what_the_runner_parses(site_dir: Path, tmp_path: Path) -> None:
    checks = write_checks(tmp_path / "checks", ok="pass\n", reused="raise SystemExit(1)\n")
    argv = runner_argv(
        sys.executable,
        smoke_dir=str(RUNNER.parent),
        sites=[str(site_dir)],
        packages=["good-pkg"],
        checks_dirs=[str(checks)],
        timeout=5,
        only=["user:*", "exec"],
        exec_cmd=[sys.executable, "-c", "print('hi')"],
        reuse=["user:reused.py"],
    )
    proc = subprocess.run([argv[0], "-S", *argv[1:]], capture_output=True, text=True, check=False)
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    checked = [e["check"] for e in events if e["event"] == "result"]
    assert checked == ["import:good-pkg", "import:broken-pkg", "user:ok.py", "exec"]
    assert {"event": "reuse", "check": "user:reused.py"} in events
    verdicts = {e["check"]: e["verdict"] for e in events if e["event"] == "result"}
    assert verdicts == {
        "import:good-pkg": "pass",
        "import:broken-pkg": "import-error",
        "user:ok.py": "pass",
        "exec": "pass",
    }


def _python39() -> str | None:
    """An interpreter of the oldest Python the suite supports, if this host has one."""
    for candidate in ("python3.9", "/root/.pyenv/versions/3.9.18/bin/python3.9"):
        try:
            out = subprocess.run(
                [candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 9))"],
                capture_output=True,
                text=True,
                timeout=20,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.stdout.strip() == "True":
            return candidate
    return None


@pytest.mark.slow
def test_runs_on_python_3_9(site_dir: Path, tmp_path: Path) -> None:
    python = _python39()
    if python is None:
        pytest.skip("no Python 3.9 interpreter on this host")
    checks = write_checks(
        tmp_path / "checks",
        ok="import good_pkg\n",
        crash="import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n",
    )
    run = run_runner(
        "--site", str(site_dir), "--package", "good-pkg", "--package", "broken-pkg",
        "--checks-dir", str(checks), python=python,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.verdict("import:good-pkg") == "pass"
    assert run.verdict("import:broken-pkg") == "import-error"
    assert run.verdict("user:ok.py") == "pass"
    assert run.verdict("user:crash.py") == "crash"
    # The built-in checks load on 3.9 too, and skip without their packages.
    assert run.verdict("numpy:copy-semantics") == "skipped"


@pytest.mark.slow
def test_checks_outside_their_valid_range_are_skipped_with_the_reason(tmp_path: Path) -> None:
    site = tmp_path / "old-numpy"
    make_dist(site, "numpy", "numpy", "__version__ = '1.0'\n")
    for sub in ("linalg", "fft", "random"):
        (site / "numpy" / f"{sub}.py").write_text("")
    (site / "numpy-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: numpy\nVersion: 1.0\n"
    )
    run = run_runner("--site", str(site), "--package", "numpy", "--only", "numpy:*")
    assert run.returncode == 0, run.stderr
    assert run.verdict("import:numpy") == "pass"
    numpy_checks = {n: r for n, r in run.results.items() if n.startswith("numpy:")}
    assert numpy_checks
    assert {r["verdict"] for r in numpy_checks.values()} == {"skipped"}
    assert {r["error"] for r in numpy_checks.values()} == {"needs numpy>=1.20, have 1.0"}


@pytest.mark.slow
def test_an_import_check_reports_what_its_modules_loaded(site_dir: Path) -> None:
    make_dist(site_dir, "user-pkg", "user_pkg", "import good_pkg\n")
    run = run_runner("--site", str(site_dir), "--package", "user-pkg", "--only", "none")
    assert run.results["import:user-pkg"]["inputs"] == {"good-pkg": "1.0", "user-pkg": "1.0"}
    assert run.verdict("import:user-pkg") == "pass"
    assert run.verdict("import:broken-pkg") == "import-error"


@pytest.mark.slow
def test_without_site_dirs_the_combination_is_what_the_packages_require(tmp_path: Path) -> None:
    env_dir = tmp_path / "env"
    make_dist(env_dir, "app", "app", "")
    make_dist(env_dir, "needed", "needed", "")
    make_dist(env_dir, "for-an-extra", "for_an_extra", "")
    make_dist(env_dir, "unrelated", "unrelated", "")
    metadata = env_dir / "app-1.0.dist-info" / "METADATA"
    metadata.write_text(
        metadata.read_text()
        + "Requires-Dist: needed>=1\nRequires-Dist: for-an-extra; extra == 'plots'\n"
        + "Requires-Dist: not-installed\n"
    )
    run = run_runner("--package", "app", "--only", "none", env={"PYTHONPATH": str(env_dir)})
    assert set(run.results) == {"import:app", "import:needed"}


# What the fake numpy does on import: note its process, and fail at the Nth import
# when FAKE_FAIL_AT says so (by a segfault, or an ImportError when FAKE_FAIL=raise).
FAKE_NUMPY = """
import os, signal
__version__ = "2.0.0"
_log = os.environ["FAKE_PIDS"]
with open(_log, "a") as f:
    f.write(f"{os.getpid()}\\n")
with open(_log) as f:
    _count = len(f.readlines())
_at = int(os.environ.get("FAKE_FAIL_AT", "0"))
if _at and _count >= _at:
    if os.environ.get("FAKE_FAIL") == "raise":
        raise ImportError("numpy fails this time")
    os.kill(os.getpid(), signal.SIGSEGV)
"""
SCIPY_MODULES = (
    "special", "linalg", "sparse", "sparse.linalg", "optimize", "stats", "interpolate",
    "signal", "ndimage", "spatial",
)  # fmt: skip


@pytest.fixture
def fake_stack(tmp_path: Path) -> Path:
    """numpy 2.0.0 (noting each process that imports it), scipy 1.10.0 requiring
    it, and an unrelated other-pkg: the built-in numpy and scipy checks run (and
    fail, on fakes) against them."""
    site = tmp_path / "stack"
    make_dist(
        site, "numpy", "numpy", FAKE_NUMPY, version="2.0.0",
        submodules=("linalg", "fft", "random"),
    )  # fmt: skip
    make_dist(
        site, "scipy", "scipy", "import numpy\n__version__ = '1.10.0'\n", version="1.10.0",
        submodules=SCIPY_MODULES, requires=("numpy>=1.20",),
    )  # fmt: skip
    make_dist(site, "other-pkg", "other_pkg", "VALUE = 1\n")
    return site


def _pids(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()] if path.exists() else []


@pytest.mark.slow
def test_a_checks_inputs_are_what_its_own_process_loaded(fake_stack: Path, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    make_dist(fake_stack, "broken-pkg", "broken_pkg", "raise ImportError('broken')\n")
    checks = write_checks(
        tmp_path / "checks",
        uses_other="import other_pkg\n",
        # an import that failed and a probe leave nothing in sys.modules
        tries=(
            "import importlib.util\n"
            "try:\n    import broken_pkg\nexcept ImportError:\n    pass\n"
            "assert importlib.util.find_spec('other_pkg')\n"
        ),
    )
    run = run_runner(
        "--site", str(fake_stack), "--only", "numpy:*", "--only", "scipy:*",
        "--only", "user:*", "--checks-dir", str(checks),
        env={"FAKE_PIDS": str(pids)},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.verdict("import:numpy") == "pass"
    numpy_checks = [r for n, r in run.results.items() if n.startswith("numpy:")]
    scipy_checks = [r for n, r in run.results.items() if n.startswith("scipy:")]
    assert numpy_checks
    assert scipy_checks
    # every one ran (against fakes: they fail) and loaded what its needs require,
    # not what the import checks imported besides
    assert {r["verdict"] for r in numpy_checks + scipy_checks} & {"skipped", "crash"} == set()
    assert all(r["inputs"] == {"numpy": "2.0.0"} for r in numpy_checks), numpy_checks
    assert all(r["inputs"] == {"numpy": "2.0.0", "scipy": "1.10.0"} for r in scipy_checks)
    assert run.results["user:uses_other.py"]["inputs"] == {"other-pkg": "1.0"}
    assert run.verdict("user:tries.py") == "pass"
    assert run.results["user:tries.py"]["inputs"] == {"broken-pkg": "1.0", "other-pkg": "1.0"}
    # an import check's inputs are its whole-package import's
    assert run.results["import:numpy"]["inputs"] == {"numpy": "2.0.0"}
    assert run.results["import:scipy"]["inputs"] == {"numpy": "2.0.0", "scipy": "1.10.0"}
    # numpy's zygote is scipy's parent: its checks come first
    names = [e["check"] for e in run.events if e["event"] == "result"]
    assert names.index(f"{numpy_checks[-1]['check']}") < names.index(scipy_checks[0]["check"])
    # the sweeps, the import checks and the zygotes imported numpy; the runner never
    imported_in = _pids(pids)
    assert len(set(imported_in)) >= 3
    assert run.pid not in imported_in


@pytest.mark.slow
@pytest.mark.parametrize(
    ("how", "verdict", "error"),
    [
        ("segfault", "crash", "killed by signal SIGSEGV"),
        ("raise", "import-error", "ImportError: numpy fails this time (importing numpy for numpy)"),
    ],
)
def test_a_zygote_that_fails_its_import_fails_every_check_below_it(
    fake_stack: Path, tmp_path: Path, how: str, verdict: str, error: str
) -> None:
    run = run_runner(
        "--site", str(fake_stack), "--only", "numpy:*", "--only", "scipy:*",
        # numpy's and scipy's import checks import numpy, the zygote (the third) fails
        env={"FAKE_PIDS": str(tmp_path / "pids"), "FAKE_FAIL_AT": "3", "FAKE_FAIL": how},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.verdict("import:numpy") == "pass"
    below = {n: r for n, r in run.results.items() if n.startswith(("numpy:", "scipy:"))}
    assert len(below) == 10
    for result in below.values():
        assert result["verdict"] == verdict, result
        assert result["error"].startswith(error), result["error"]
        assert result["inputs"] is None
    if how == "segfault":
        assert all("the process importing numpy" in r["error"] for r in below.values())
        assert all("Fatal Python error" in r["log"] for r in below.values())
    starts = [e["check"] for e in run.events if e["event"] == "start"]
    assert sorted(starts) == sorted(run.results)  # a start for each, once


@pytest.mark.slow
def test_a_reused_check_is_not_run_and_says_so(fake_stack: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    checks = write_checks(
        tmp_path / "checks",
        writes=f"print('ran'); open({str(marker)!r}, 'w').write('ran')\n",
        other="pass\n",
    )
    run = run_runner(
        "--site", str(fake_stack), "--checks-dir", str(checks), "--only", "user:*",
        "--only", "numpy:copy-semantics", "--only", "pandas+matplotlib:*",
        "--reuse", "user:writes.py", "--reuse", "numpy:copy-semantics",
        "--reuse", "pandas+matplotlib:plot-kinds-options",
        env={"FAKE_PIDS": str(tmp_path / "pids")},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert not marker.exists()
    reused = [e for e in run.events if e["event"] == "reuse"]
    assert reused == [
        {"event": "reuse", "check": "numpy:copy-semantics"},
        {"event": "reuse", "check": "user:writes.py"},
    ]
    for name in ("numpy:copy-semantics", "user:writes.py"):
        assert all(e.get("check") != name for e in run.events if e["event"] != "reuse")
    assert run.verdict("user:other.py") == "pass"
    # a reused check that would be skipped is skipped, as ever
    skipped = run.results["pandas+matplotlib:plot-kinds-options"]
    assert skipped["verdict"] == "skipped"
    assert skipped["error"] == "needs pandas, matplotlib: not in the combination"
    assert run.done["counts"]["pass"] == 4  # the three imports, user:other.py


@pytest.mark.slow
def test_a_module_failing_beyond_the_essential_ones_skips_no_check(
    fake_stack: Path, tmp_path: Path
) -> None:
    # a numpy module that needs what scipy no longer has: the import check fails
    # (a baseline may yet explain it), and numpy's checks still run
    (fake_stack / "numpy" / "compat_layer.py").write_text("from scipy import removed\n")
    record = fake_stack / "numpy-2.0.0.dist-info" / "RECORD"
    record.write_text(record.read_text() + "numpy/compat_layer.py,,\n")
    run = run_runner(
        "--site", str(fake_stack), "--only", "numpy:*", env={"FAKE_PIDS": str(tmp_path / "pids")}
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    numpy = run.results["import:numpy"]
    assert numpy["verdict"] == "import-error"
    assert numpy["error"].startswith("numpy.compat_layer: ImportError: cannot import name")
    assert "essential modules failed" not in numpy["log"]
    numpy_checks = [r for n, r in run.results.items() if n.startswith("numpy:")]
    assert numpy_checks
    assert all(r["verdict"] != "skipped" for r in numpy_checks), numpy_checks


@pytest.mark.slow
def test_a_reused_import_is_not_run_and_its_checks_run(fake_stack: Path, tmp_path: Path) -> None:
    run = run_runner(
        "--site", str(fake_stack), "--only", "numpy:*", "--reuse", "import:numpy",
        env={"FAKE_PIDS": str(tmp_path / "pids")},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert {"event": "reuse", "check": "import:numpy"} in run.events
    imports = [n for n in run.results if n.startswith("import:")]
    assert imports == ["import:scipy", "import:other-pkg"]
    # what scipy loaded is among its inputs, though numpy's import check did not run
    assert run.results["import:scipy"]["inputs"] == {"numpy": "2.0.0", "scipy": "1.10.0"}
    numpy_checks = [r for n, r in run.results.items() if n.startswith("numpy:")]
    assert numpy_checks
    assert all(r["verdict"] != "skipped" for r in numpy_checks), numpy_checks


@dataclass(frozen=True)
class _Needs:
    name: str

    @property
    def needs(self) -> tuple[str, ...]:
        return tuple(self.name.split(":")[0].split("+"))


def _shape(nodes: list[Node]) -> list[tuple[str, list[str], list[Any]]]:
    return [(n.name, [c.name for c in n.checks], _shape(n.children)) for n in nodes]


_REQUIRES = {
    "numpy": frozenset({"numpy"}),
    "scipy": frozenset({"scipy", "numpy"}),
    "pandas": frozenset({"pandas", "numpy"}),
    "matplotlib": frozenset({"matplotlib", "numpy", "pillow"}),
    "scikit-learn": frozenset({"scikit-learn", "scipy", "numpy"}),
    "pillow": frozenset({"pillow"}),
}
_ORDER = ("numpy", "scipy", "pandas", "matplotlib", "scikit-learn", "pillow")
_COST = {"numpy": 0.1, "scipy": 1.0, "pandas": 0.2, "matplotlib": 0.3, "scikit-learn": 0.4}


def test_a_zygote_hangs_below_the_one_that_imported_most_of_what_it_needs() -> None:
    names = [
        "pandas+matplotlib:a", "scikit-learn+pandas:a", "numpy:a", "scipy:a", "pandas:a",
        "matplotlib:a", "matplotlib+pillow:a", "scikit-learn+scipy:a", "scikit-learn+matplotlib:a",
    ]  # fmt: skip
    roots = plan([_Needs(n) for n in names], _ORDER, _REQUIRES, _COST)
    assert _shape(roots) == [
        ("numpy", ["numpy:a"], [
            ("scipy", ["scipy:a"], [
                # scikit-learn requires scipy: no zygote of its own would import less
                ("scipy+scikit-learn", ["scikit-learn+scipy:a"], [
                    ("pandas+scikit-learn", ["scikit-learn+pandas:a"], []),
                    ("matplotlib+scikit-learn", ["scikit-learn+matplotlib:a"], []),
                ]),
            ]),
            ("pandas", ["pandas:a"], []),
            ("matplotlib", ["matplotlib:a"], [
                ("matplotlib+pillow", ["matplotlib+pillow:a"], [
                    ("pandas+matplotlib", ["pandas+matplotlib:a"], []),
                ]),
            ]),
        ]),
    ]  # fmt: skip


def test_a_distribution_that_needs_sets_share_gets_a_zygote_of_its_own() -> None:
    shared = plan(
        [_Needs("scikit-learn+pandas:a"), _Needs("scikit-learn+matplotlib:b")],
        _ORDER,
        _REQUIRES,
        _COST,
    )
    assert _shape(shared) == [
        ("scikit-learn", [], [
            ("pandas+scikit-learn", ["scikit-learn+pandas:a"], []),
            ("matplotlib+scikit-learn", ["scikit-learn+matplotlib:b"], []),
        ]),
    ]  # fmt: skip
    # one that only one needs-set has is no use
    alone = plan([_Needs("scikit-learn+pandas:a")], _ORDER, _REQUIRES, _COST)
    assert _shape(alone) == [("pandas+scikit-learn", ["scikit-learn+pandas:a"], [])]


@pytest.mark.parametrize(("rose", "memory"), [(True, True), (False, False)])
def test_a_child_killed_while_the_out_of_memory_count_rose_says_it_met_the_limit(
    monkeypatch: pytest.MonkeyPatch, rose: bool, memory: bool
) -> None:
    counts = iter([3, 4 if rose else 3])  # before the fork, after the death
    monkeypatch.setattr(isolate, "oom_kills", lambda: next(counts))
    killed = isolate.run_forked(lambda: os.kill(os.getpid(), signal.SIGKILL), 10)
    assert killed.verdict == isolate.CRASH
    assert (killed.error or "").startswith(isolate.OUT_OF_MEMORY) is memory
    assert "SIGKILL" in (killed.error or "") or memory


def test_the_out_of_memory_count_is_read_from_cgroup_v2_or_v1(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    v2, v1 = tmp_path / "memory.events", tmp_path / "memory.oom_control"
    v2.write_text("low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\n")
    v1.write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 5\n")
    monkeypatch.setattr(isolate, "_OOM_COUNTS", (str(v2), str(v1)))
    assert isolate.oom_kills() == 2
    v2.unlink()
    assert isolate.oom_kills() == 5
    v1.unlink()
    assert isolate.oom_kills() is None
