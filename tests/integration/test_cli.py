"""The commands users run, end to end: real engine, real images, real PyPI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from compat.report.view import format_bytes
from tests.helpers.docker import require_docker, run_label_filter

BOOKWORM = "local/debian-python:bookworm"
MUSL = "local/musl-python:3.11"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    require_docker()
    home = tmp_path_factory.mktemp("compat-cli")
    return {
        **os.environ,
        "COMPAT_CACHE_DIR": str(home / "cache"),
        "COMPAT_DATA_DIR": str(home / "data"),
        "COMPAT_DB": f"sqlite:///{home / 'results.db'}",
        "COLUMNS": "200",
    }


def _compat_containers() -> set[str]:
    client = docker.from_env()
    return {c.id for c in client.containers.list(all=True, filters=run_label_filter())}


@pytest.fixture(autouse=True)
def _no_container_left(env: dict[str, str]) -> Iterator[None]:
    before = _compat_containers()
    yield
    left = _compat_containers() - before
    assert not left, f"containers left behind: {left}"


def compat(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "compat", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )


def test_check_pandas_built_for_numpy_1_under_numpy_2_is_an_import_error(
    env: dict[str, str],
) -> None:
    done = compat(env, "check", "pandas==2.1.1", "numpy==2.0.2", "--image", BOOKWORM, "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["verdict"] == "import-error"
    assert "import:pandas" in result["failed_checks"]
    assert "numpy.dtype size changed" in result["error"]


def test_check_force_overrides_a_declared_cap(env: dict[str, str]) -> None:
    # pandas 2.2.1 declares numpy<2; without --force that is a metadata conflict
    refused = compat(env, "check", "pandas==2.2.1", "numpy==2.0.2", "--image", BOOKWORM, "--json")
    assert json.loads(refused.stdout)["verdict"] == "metadata-conflict"
    assert refused.returncode == 0, refused.stderr
    for_scripts = compat(
        env, "check", "pandas==2.2.1", "numpy==2.0.2", "--image", BOOKWORM, "--fail-on-incompatible"
    )
    assert for_scripts.returncode == 6, for_scripts.stderr
    assert "metadata-conflict" in for_scripts.stdout
    forced = compat(
        env, "check", "pandas==2.2.1", "numpy==2.0.2", "--image", BOOKWORM, "--force", "--json"
    )
    assert forced.returncode == 0, forced.stderr
    result = json.loads(forced.stdout)
    pins = {p["name"]: p["version"] for p in result["combo"]["pins"]}
    assert pins["numpy"] == "2.0.2"
    assert pins["pandas"] == "2.2.1"
    # built against numpy 1.x, pandas 2.2.1 cannot load under numpy 2: the cap was right
    assert result["verdict"] == "import-error"


def test_scan_on_musl_no_wheel_for_sklearn_and_lightgbm_numpy_pandas_pass(
    env: dict[str, str], tmp_path: Path
) -> None:
    matrix = tmp_path / "musl.toml"
    matrix.write_text(
        'build = "none"\n[packages]\nnumpy = ">=2.2,<2.4"\npandas = ">=2.3,<3.1"\n'
        'scikit-learn = ">=1.6"\nlightgbm = ">=4.5"\n'
        # python-dateutil 4 breaks the time zones of every pandas before 3.1.1
        '[constraints]\npython-dateutil = "<3"\n'
    )
    done = compat(
        env,
        "scan",
        "--image",
        MUSL,
        "--matrix",
        str(matrix),
        "--strategy",
        "latest",
        "--fail-on-incompatible",
    )
    out = done.stdout
    assert "no-wheel" in out
    # in a pipe the summary is one tab-separated line per combination
    lines = {line.split("\t")[0]: line for line in out.splitlines() if line.count("\t") == 3}
    assert "no-wheel" in lines["scikit-learn"]
    assert "no-wheel" in lines["lightgbm"]
    assert "musllinux" in lines["scikit-learn"]
    (stack,) = [k for k in lines if k.startswith("numpy ")]
    assert "pass" in lines[stack]
    assert done.returncode == 6  # --fail-on-incompatible: the no-wheel rows fail the scan
    listed = compat(env, "results", "--base", MUSL, "--json")
    stored = json.loads(listed.stdout)
    assert [r["verdict"] for r in stored] == ["pass"]
    # a second scan runs nothing: the combination was tested on this image already
    again = compat(env, "scan", "--image", MUSL, "--matrix", str(matrix), "--strategy", "latest")
    assert "already tested on this image" in again.stderr
    assert "earlier run" in again.stdout


def test_scan_reports_missing_libgomp_and_fixes_it(env: dict[str, str], tmp_path: Path) -> None:
    matrix = tmp_path / "lgbm.toml"
    matrix.write_text('[packages]\nnumpy = ">=2.3"\nlightgbm = ">=4.6"\n')

    def scan(*options: str) -> subprocess.CompletedProcess[str]:
        args = ("--image", BOOKWORM, "--matrix", str(matrix), "--strategy", "latest")
        return compat(env, "scan", *args, *options)

    plain = scan("--no-system-deps")
    assert plain.returncode == 0, plain.stderr
    assert "import-error" in plain.stdout
    assert "libgomp1" in plain.stdout
    # by default the missing library's package is installed: the combination passes with it
    fixed = scan("--fail-on-incompatible")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "needs libgomp1" in fixed.stdout
    # remembered for the image: a later run installs it before the first run
    again = scan("--retest", "--fail-on-incompatible")
    assert again.returncode == 0, again.stdout + again.stderr
    said = again.stdout + again.stderr
    assert "installing libgomp1, which earlier runs found this image needs" in said
    assert "needs libgomp1" in again.stdout


def test_missing_image_says_what_to_do(env: dict[str, str]) -> None:
    done = compat(env, "check", "numpy", "--image", "local/no-such-image:1")
    assert done.returncode == 9
    assert "local/no-such-image:1" in done.stderr
    assert "--image REF" in done.stderr  # what to do instead: another image, or the host
    assert "--backend local" in done.stderr
    assert "Traceback" not in done.stderr


def test_lock_image_and_report_from_a_scan(env: dict[str, str], tmp_path: Path) -> None:
    matrix = tmp_path / "small.toml"
    matrix.write_text('[packages]\nnumpy = ">=2.3"\nlightgbm = ">=4.6"\n')
    scanned = compat(
        env,
        "scan",
        "--image",
        BOOKWORM,
        "--matrix",
        str(matrix),
        "--strategy",
        "latest",
        "--add-system-deps",  # the old spelling of the default still works
    )
    assert scanned.returncode == 0, scanned.stderr

    of_it = ("--matrix", str(matrix))  # the module's other tests ran other stacks here
    nothing = compat(env, "lock", "--image", BOOKWORM, *of_it, "--constraint", "numpy<1")
    assert nothing.returncode == 8
    assert "no known-good combination of small meeting numpy<1" in nothing.stderr

    out = tmp_path / "lock"
    locked = compat(env, "lock", "--image", BOOKWORM, *of_it, "-o", str(out))
    assert locked.returncode == 0, locked.stderr
    requirements = (out / "requirements.txt").read_text()
    pins = [line for line in requirements.splitlines() if line and not line.startswith("#")]
    assert pins
    assert all("--hash=sha256:" in line for line in pins)
    assert "libgomp1" in (out / "Dockerfile").read_text()
    assert (out / "pylock.toml").is_file()

    built = compat(env, "image", "--lock-dir", str(out), "--json")
    assert built.returncode == 0, built.stderr
    report = json.loads(built.stdout)
    assert report["verdict"] == "pass"
    assert 0 < report["added_size"] < report["size"]
    # what was built, smoke-tested and measured is the Dockerfile lock wrote
    assert report["dockerfile"] == (out / "Dockerfile").read_text()
    # its start-up, both ways: the image ships bytecode, and importing is faster with it
    startup = report["startup"]
    assert startup["modules"] == ["numpy", "lightgbm"]
    assert startup["bytecode_in_image"]
    assert startup["bytecode_size"] > 0
    assert startup["with_bytecode"] < startup["without_bytecode"]

    html = tmp_path / "report.html"
    written = compat(env, "report", "-o", str(html))
    assert written.returncode == 0, written.stderr
    page = html.read_text()
    assert format_bytes(report["size"]) in page  # the known-good image size per base
    assert format_bytes(report["added_size"]) in page


def test_nightly_runs_what_is_new_then_nothing(env: dict[str, str], tmp_path: Path) -> None:
    matrix = tmp_path / "nightly.toml"
    matrix.write_text(
        f'bases = ["{BOOKWORM}"]\nstrategy = "minor"\nlast-minors = 1\n'
        '[packages]\nnumpy = ">=2.2"\npandas = ">=2.3"\n'
    )
    own = {**env, "COMPAT_DB": f"sqlite:///{tmp_path / 'nightly.db'}"}
    locks = tmp_path / "lock"
    # at smoke depth: the deep tier's nights are unit-tested (CI time)
    night = ("nightly", "--matrix", str(matrix), "--lock-root", str(locks), "--depth", "smoke")
    first = compat(own, *night, "--json")
    assert first.returncode == 10, first.stderr  # the first night writes the lock: a change
    (base,) = json.loads(first.stdout)["bases"]
    assert base["ran"]
    assert base["lock_changed"] is True
    written = next(locks.iterdir())
    assert (written / "requirements.txt").is_file()

    # the engine's events have whole seconds: start on the next one, so that nothing the
    # first night did in its last second is counted as the second night's
    since = int(time.time()) + 1
    time.sleep(since - time.time())
    second = compat(own, *night, "--json")
    assert second.returncode == 0, second.stderr
    (base,) = json.loads(second.stdout)["bases"]
    assert base["ran"] == []
    assert _containers_created(since) == []  # nothing new: no container started


def _containers_created(since: int) -> list[str]:
    """Containers this run's compat started from ``since`` to now (not a build's steps:
    only compat's own containers carry a session)."""
    events = docker.from_env().events(
        since=since,
        until=int(time.time()) + 1,
        filters={"type": "container", "event": "create", **run_label_filter()},
        decode=True,
    )
    return [
        f"{e['id'][:12]} {attributes.get('image')} {attributes.get('compat.owner')}"
        for e in events
        for attributes in [e.get("Actor", {}).get("Attributes", {})]
        if "compat.session" in attributes
    ]


def test_a_scan_reusing_checks_gives_the_verdicts_of_one_that_runs_them_all(
    env: dict[str, str], tmp_path: Path
) -> None:
    """scipy changes, numpy and pandas do not: the checks that imported no scipy are
    taken from the first scan, and every verdict is what running them gives."""

    def scan(db: str, scipy: str, *options: str) -> dict[str, object]:
        """The scan's result of the combination with scipy 1.14 (or its only one)."""
        matrix = tmp_path / f"scipy-{scipy}.toml"
        matrix.write_text(
            '[packages]\nnumpy = "==2.0.2"\npandas = "==2.2.3"\n'
            f'scipy = "{scipy}"\npython-dateutil = "==2.9.0.post0"\n'
        )
        own = {**env, "COMPAT_DB": f"sqlite:///{tmp_path / db}"}
        args = ("--image", BOOKWORM, "--matrix", str(matrix), "--strategy", "minor")
        done = compat(own, "scan", *args, "--last-minors", "2", "-j", "1", *options, "--json")
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout)
        rows = summary["rows"]
        (row,) = [r for r in rows if "scipy 1.14" in r["label"]] if len(rows) > 1 else rows
        shown = compat(own, "show", row["combination"], "--json")
        assert shown.returncode == 0, shown.stderr
        result: dict[str, object] = json.loads(shown.stdout)
        return result

    scan("reused.db", "==1.13.1")  # what the next scan of the same image reuses
    reused = scan("reused.db", ">=1.13,<1.15")
    ran = scan("ran.db", "==1.14.1", "--no-reuse")

    def verdicts(result: dict[str, object]) -> dict[str, str]:
        checks = result["checks"]
        assert isinstance(checks, list)
        return {c["name"]: c["verdict"] for c in checks}

    assert reused["verdict"] == ran["verdict"]
    assert verdicts(reused) == verdicts(ran)
    checks = reused["checks"]
    assert isinstance(checks, list)
    taken = [c for c in checks if c["reused_from"]]
    rerun = [c for c in checks if c["inputs"] and not c["reused_from"]]
    assert taken, "nothing was reused"
    assert all("scipy" not in c["inputs"] for c in taken)
    assert all(c["reused_from_id"] == 1 for c in taken)  # the first scan's only result
    assert any("scipy" in c["inputs"] for c in rerun)  # what imported scipy ran again
