"""The smoke suite on real packages from PyPI, in venvs made with uv (no Docker).

Measures the suite's wall time cold (no bytecode: PYTHONDONTWRITEBYTECODE=1 is
set here, so nothing gets compiled on the way) and warm (bytecode compiled
with compileall first), and checks the two failures that matter most: a pandas
built for numpy 1.x under numpy 2, and an older generation of the stack on the
oldest Python the suite supports; and one that only shows at runtime.
"""

from __future__ import annotations

import compileall
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from compat.smoke import RUNNER
from compat.smoke.engine import NOT_IN_COMBINATION

SIX = ("numpy", "scipy", "scikit-learn", "pandas", "matplotlib", "lightgbm")

# The stack of early 2023, the last before numpy 2 and scikit-learn's set_output.
OLD_GENERATION = (
    "numpy==1.23.5",
    "scipy==1.9.3",
    "pandas==1.5.3",
    "scikit-learn==1.1.3",
    "matplotlib==3.6.3",
    "lightgbm==3.3.5",
    # its own time: python-dateutil 4 breaks every pandas before 3.1.1 (time zones)
    "python-dateutil==2.8.2",
)


@dataclass(frozen=True, kw_only=True, slots=True)
class SuiteRun:
    returncode: int
    events: list[dict[str, Any]]
    stderr: str
    wall: float

    @property
    def results(self) -> dict[str, dict[str, Any]]:
        return {e["check"]: e for e in self.events if e["event"] == "result"}

    def failures(self) -> dict[str, str]:
        """Every check that did not pass, but those skipped because their packages
        are not in the environment (pandas' optional engines beside the six)."""
        return {
            name: f"{r['verdict']}: {r['error']}\n{r['log'] or ''}"
            for name, r in self.results.items()
            if r["verdict"] != "pass"
            and not (r["verdict"] == "skipped" and NOT_IN_COMBINATION in (r["error"] or ""))
        }

    def seconds(self, prefix: str) -> float:
        return float(sum(r["duration"] for n, r in self.results.items() if n.startswith(prefix)))


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.setdefault("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")
    return env


def _uv() -> str:
    uv = shutil.which("uv")
    if uv is None:
        pytest.fail("uv is needed to build the test environments (pip install uv)")
    return uv


def make_venv(where: Path, python: str, requirements: Sequence[str], *, no_deps: bool) -> Path:
    """A venv with ``requirements`` from PyPI, no bytecode compiled; its python."""
    uv = _uv()
    subprocess.run([uv, "venv", "--quiet", "--python", python, str(where)], check=True, env=_env())
    install = [uv, "pip", "install", "--quiet", "--python", str(where / "bin" / "python")]
    if no_deps:
        install.append("--no-deps")
    subprocess.run([*install, *requirements], check=True, env=_env(), timeout=900)
    return where / "bin" / "python"


def run_suite(python: Path | str, *args: str, flags: Sequence[str] = ()) -> SuiteRun:
    started = time.monotonic()
    proc = subprocess.run(
        [str(python), *flags, str(RUNNER), *args],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=900,
        check=False,
    )
    wall = time.monotonic() - started
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    return SuiteRun(returncode=proc.returncode, events=events, stderr=proc.stderr, wall=wall)


def _site_packages(python: Path) -> Path:
    out = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(out.stdout.strip())


def _report(label: str, run: SuiteRun) -> str:
    slowest = sorted(run.results.values(), key=lambda r: -r["duration"])[:3]
    return (
        f"smoke suite, {label}: {run.wall:.2f} s wall "
        f"(imports {run.seconds('import:'):.2f} s, checks {run.wall - run.seconds('import:'):.2f} s"
        f" incl. startup; slowest: "
        + ", ".join(f"{r['check']} {r['duration']:.2f} s" for r in slowest)
        + ")"
    )


def test_latest_six_packages_pass_cold_and_warm(
    tmp_path: Path, record_property: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    python = make_venv(tmp_path / "venv", sys.executable, SIX, no_deps=False)
    args = [arg for name in SIX for arg in ("--package", name)]

    cold = run_suite(python, *args)
    assert cold.returncode == 0, cold.stderr
    assert cold.events[-1]["event"] == "done"
    # pandas 3 no longer installs pytz: its time-zone check has nothing to check
    failed = {k: v for k, v in cold.failures().items() if k != "pandas+pytz:pytz-time-zones"}
    assert not failed, "\n\n".join(f"{k}: {v}" for k, v in failed.items())
    assert len(cold.results) >= 6 + 30

    site_packages = _site_packages(python)
    assert not list(site_packages.glob("numpy/__pycache__/*.pyc"))  # it really was cold
    assert compileall.compile_dir(site_packages, quiet=2, workers=0)
    warm = run_suite(python, *args)
    assert set(warm.failures()) == set(cold.failures()), warm.failures()

    with capsys.disabled():
        print()
        print(_report("cold (no bytecode)", cold))
        print(_report("warm (bytecode compiled)", warm))
    record_property("smoke_cold_seconds", round(cold.wall, 2))
    record_property("smoke_warm_seconds", round(warm.wall, 2))
    # Times are benchmarks' business (benchmarks/bench_smoke.py), not a pass mark here.


def test_pandas_built_for_numpy_1_fails_to_import_under_numpy_2(tmp_path: Path) -> None:
    # --no-deps: pandas 2.1.1 declares numpy<2 only through its build, not its metadata.
    target = tmp_path / "site"
    subprocess.run(
        [
            _uv(),
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--python",
            sys.executable,
            "--target",
            str(target),
            "pandas==2.1.1",
            "numpy==2.0.2",
            "python-dateutil",
            "six",
            "pytz",
            "tzdata",
        ],
        check=True,
        env=_env(),
        timeout=900,
    )
    # Composed the harness's way: the base interpreter, isolated, and --site.
    run = run_suite(
        sys.executable,
        *("--site", str(target), "--package", "pandas", "--package", "numpy"),
        flags=("-I", "-S"),
    )
    assert run.returncode == 0, run.stderr
    pandas = run.results["import:pandas"]
    assert pandas["verdict"] == "import-error"
    assert "numpy.dtype size changed" in pandas["error"]
    assert str(target / "pandas") in pandas["log"]
    assert run.results["import:numpy"]["verdict"] == "pass"
    assert "numpy 2.0.2" in run.results["import:numpy"]["log"]
    frames = [r for n, r in run.results.items() if n.startswith("pandas+numpy:")]
    assert frames
    assert all(r["verdict"] == "skipped" for r in frames)
    numpy_checks = [r for n, r in run.results.items() if n.startswith("numpy:")]
    assert numpy_checks
    assert all(r["verdict"] == "pass" for r in numpy_checks)


def test_lightgbm_using_copy_false_fails_at_runtime_under_numpy_2(tmp_path: Path) -> None:
    """Imports fine, breaks when used: lightgbm 4.3 calls np.array(copy=False) on a
    pandas label that needs a float32 copy; numpy 2 refuses it once pandas (3.x)
    passes ``copy`` on from ``Series.__array__``."""
    python = make_venv(
        tmp_path / "venv",
        sys.executable,
        ["lightgbm==4.3.0", "numpy==2.4.6", "pandas==3.1.1", "scipy==1.17.1"],
        no_deps=False,
    )
    run = run_suite(python, "--package", "lightgbm", "--package", "pandas", "--only", "lightgbm*")
    assert run.returncode == 0, run.stderr
    assert run.results["import:lightgbm"]["verdict"] == "pass"
    assert run.results["lightgbm+numpy:native-train"]["verdict"] == "pass"
    broken = run.results["lightgbm+pandas:pandas-categorical"]
    assert broken["verdict"] == "runtime-error"
    assert broken["error"] == (
        "ValueError: Unable to avoid copy while creating an array as requested."
    )
    assert "lightgbm/basic.py" in broken["log"]


def _python39() -> str | None:
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


def test_old_generation_on_python_3_9_passes(tmp_path: Path) -> None:
    """The checks follow each version's documented behaviour: numpy 1.x copy and
    promotion rules, scikit-learn before set_output, lightgbm 3."""
    python39 = _python39()
    if python39 is None:
        pytest.skip("no Python 3.9 interpreter on this host")
    python = make_venv(tmp_path / "venv", python39, OLD_GENERATION, no_deps=False)
    run = run_suite(python, *[arg for name in SIX for arg in ("--package", name)])
    assert run.returncode == 0, run.stderr
    failures = run.failures()
    skipped = {name for name, text in failures.items() if text.startswith("skipped")}
    assert skipped == {"scikit-learn+pandas:set-output-pandas", "pandas:zoneinfo-time-zones"}
    assert set(failures) == skipped, failures
