"""Checks that installed distributions contribute through the ``compat.checks``
entry point group (the example plugin in tests/data/plugin), run by the runner
like built-in ones."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.helpers.smoke import make_dist, run_runner

PLUGIN = Path(__file__).parents[2] / "data" / "plugin" / "compat_example_checks"


def _install_plugin(site: Path, entry: str = "compat_example_checks") -> None:
    shutil.copytree(PLUGIN, site / "compat_example_checks")
    info = site / "compat_example_checks-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: compat-example-checks\nVersion: 0.1\n"
    )
    (info / "RECORD").write_text("compat_example_checks/__init__.py,,\n")
    (info / "entry_points.txt").write_text(f"[compat.checks]\nexample = {entry}\n")


@pytest.mark.slow
def test_a_plugins_checks_run_with_their_declarations(tmp_path: Path) -> None:
    site = tmp_path / "site"
    make_dist(
        site,
        "example-lib",
        "example_lib",
        "ANSWER = 42\ndef divide(x):\n    return x / 0\n",
    )
    _install_plugin(site)
    run = run_runner("--site", str(site), "--only", "example-lib:*")
    results = run.results
    assert results["example-lib:answer"]["verdict"] == "pass"
    assert results["example-lib:divides"]["verdict"] == "runtime-error"
    assert results["example-lib:divides"]["error"] == "ZeroDivisionError: division by zero"
    assert results["example-lib:new-api"]["verdict"] == "skipped"
    assert results["example-lib:new-api"]["error"] == "needs example-lib>=2.0, have 1.0"
    assert results["example-lib:not-here"]["error"] == "no GPU in this environment"
    # run below the process that loaded the plugins: their inputs include the plugin
    assert results["example-lib:answer"]["inputs"] == {
        "compat-example-checks": "0.1",
        "example-lib": "1.0",
    }

    # without the package it checks, the plugin's checks are skipped, not failed
    bare = tmp_path / "bare"
    bare.mkdir()
    _install_plugin(bare)
    skipped = run_runner("--site", str(bare), "--only", "example-lib:*").results
    assert skipped["example-lib:answer"]["error"] == "needs example-lib: not in the combination"


@pytest.mark.slow
def test_a_plugin_that_cannot_load_is_an_import_error(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    _install_plugin(site, entry="compat_example_checks.missing")
    run = run_runner("--site", str(site), "--only", "none")
    failed = run.results["plugin:example"]
    assert failed["verdict"] == "import-error"
    assert "compat_example_checks.missing" in failed["error"]


@pytest.mark.slow
def test_plugins_load_outside_the_runner(tmp_path: Path) -> None:
    site = tmp_path / "site"
    pids = tmp_path / "pids"
    make_dist(
        site,
        "noting-plugin",
        "noting_plugin",
        f"import os\nopen({str(pids)!r}, 'a').write(f'{{os.getpid()}}\\n')\n",
    )
    info = site / "noting_plugin-1.0.dist-info"
    (info / "entry_points.txt").write_text("[compat.checks]\nnoting = noting_plugin\n")
    run = run_runner("--site", str(site), "--only", "none")
    assert run.returncode == 0, run.stderr
    loaded_in = [int(pid) for pid in pids.read_text().split()]
    assert len(set(loaded_in)) == 2  # its import check, the plugins' process
    assert run.pid not in loaded_in
    assert "plugin:noting" not in run.results
