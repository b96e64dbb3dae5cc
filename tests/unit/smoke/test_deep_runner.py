"""The in-environment deep runner, run for real on a tiny dependent and partner
written to a temporary site directory (pytest from this environment)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest
from packaging.utils import canonicalize_name

from compat.deep.outcomes import Outcome, parse_events
from compat.smoke.deep import RUNNER, runner_argv
from compat.smoke.deep.sdist import extract_tests

FILES = {
    "depx/__init__.py": "VERSION = '1.0'\n",
    "depx/plot.py": (
        "import partnerx\n\ndef draw():\n    return partnerx.Legend().handles()\n\n"
        "def legacy():\n    return partnerx.old_api()\n"
    ),
    "depx/tests/__init__.py": "",
    "depx/tests/test_plot.py": (
        "import os, signal\n"
        "from pathlib import Path\n"
        "from depx import plot\n\n"
        "def test_ok():\n    assert 1 + 1 == 2\n\n"
        "def test_breaks():\n    plot.draw()\n\n"
        "def test_asserts():\n    assert plot.draw is None\n\n"
        "def test_flaky(tmp_path_factory):\n"
        "    mark = Path(os.environ['HOME']) / 'flaky-ran'\n"
        "    if not mark.exists():\n"
        "        mark.write_text('x')\n"
        "        raise RuntimeError('first time only')\n\n"
        "def test_crash():\n    os.kill(os.getpid(), signal.SIGSEGV)\n\n"
        # a test configuration that makes warnings errors (as pandas' does)
        "def test_deprecated():\n"
        "    import warnings\n"
        "    with warnings.catch_warnings():\n"
        "        warnings.simplefilter('error')\n"
        "        plot.legacy()\n\n"
        # a filter an earlier test left behind breaks the issuing of the warning itself
        "def test_broken_filter():\n"
        "    import warnings\n"
        "    with warnings.catch_warnings():\n"
        "        warnings.filters.insert(0, ('error', None, 'not a class', None, 0))\n"
        "        warnings._filters_mutated()\n"
        "        plot.legacy()\n\n"
        "def test_zz_after_crash():\n    pass\n"
    ),
    "depx/tests/test_alone.py": "def test_nothing_of_partner():\n    pass\n",
    # imports the partner only optionally: only its test that uses it runs
    "depx/tests/test_optional.py": (
        "import importlib.util\n"
        "try:\n    import partnerx\nexcept ImportError:\n    partnerx = None\n"
        "HAS_ABSENT = importlib.util.find_spec('absentx') is not None\n\n"
        "def test_uses():\n    assert partnerx.Legend().legend_handles() == []\n\n"
        "def test_ignores():\n    assert True\n"
    ),
    "depx-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: depx\nVersion: 1.0\n",
    "depx-1.0.dist-info/top_level.txt": "depx\n",
    "partnerx/__init__.py": (
        "import warnings\n\n"
        "class Legend:\n    def legend_handles(self):\n        return []\n\n"
        "def old_api():\n    warnings.warn('old_api is deprecated', DeprecationWarning)\n"
    ),
    "partnerx-2.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: partnerx\nVersion: 2.0\n",
    "partnerx-2.0.dist-info/top_level.txt": "partnerx\n",
    # a dependency of the partner nobody names: its frames are still owned
    "helperx/__init__.py": "",
    "helper_x-0.1.dist-info/METADATA": "Metadata-Version: 2.1\nName: Helper_X\nVersion: 0.1\n",
    "helper_x-0.1.dist-info/top_level.txt": "helperx\n",
}


def written_site(tmp_path: Path) -> Path:
    """FILES written into a site directory."""
    site = tmp_path / "site"
    for rel, text in FILES.items():
        path = site / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return site


def run_runner(site: Path, *extra: str) -> list[dict[str, Any]]:
    argv = runner_argv(
        sys.executable,
        deep_dir=str(RUNNER.parent),
        packages=["depx", "partnerx"],
        sites=[str(site)],
        jobs=2,
        timeout=30,
    )
    done = subprocess.run([*argv, *extra], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.mark.slow
def test_runner_selects_runs_reruns_and_survives_a_crash(tmp_path: Path) -> None:
    site = written_site(tmp_path)
    events = run_runner(site)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "environment"
    assert kinds[-1] == "done"
    run = parse_events(json.dumps(e) for e in events)
    plan = run.plans[canonicalize_name("depx")]
    assert plan.partners == ("partnerx",)
    assert run.owners() == {"depx": "depx", "partnerx": "partnerx", "helperx": "helper-x"}
    # test_alone imports nothing of the partner: not selected
    assert sorted(plan.modules) == ["depx/tests/test_optional.py", "depx/tests/test_plot.py"]
    outcomes = {o.test.split("::")[-1]: o for o in run.of("depx")}
    assert {name: o.outcome for name, o in outcomes.items()} == {
        "test_ok": Outcome.PASSED,
        "test_breaks": Outcome.FAILED,
        "test_asserts": Outcome.FAILED,
        "test_flaky": Outcome.FAILED,
        "test_crash": Outcome.CRASH,
        "test_deprecated": Outcome.FAILED,
        "test_broken_filter": Outcome.FAILED,
        "test_zz_after_crash": Outcome.PASSED,  # the module went on after the crash
        "test_uses": Outcome.PASSED,  # test_ignores did not run: it does not use partnerx
    }
    breaks = outcomes["test_breaks"]
    assert breaks.error == "AttributeError: 'Legend' object has no attribute 'handles'"
    assert breaks.frames[-1].path == "depx/plot.py"
    assert breaks.frames[-1].function == "draw"
    assert breaks.rerun is Outcome.FAILED
    assert outcomes["test_flaky"].rerun is Outcome.PASSED
    assert outcomes["test_crash"].rerun is Outcome.CRASH
    assert outcomes["test_crash"].error == "killed by signal SIGSEGV"
    assert outcomes["test_ok"].rerun is None
    assert outcomes["test_asserts"].frames[-1].path == "depx/tests/test_plot.py"
    assert outcomes["test_deprecated"].warning
    assert outcomes["test_deprecated"].error == "DeprecationWarning: old_api is deprecated"
    assert outcomes["test_broken_filter"].warning
    assert outcomes["test_broken_filter"].error is not None
    assert outcomes["test_broken_filter"].error.startswith("TypeError: issubclass() arg 2")
    warned = {name for name, o in outcomes.items() if o.warning}
    assert warned == {"test_deprecated", "test_broken_filter"}
    # what each module's processes loaded or tried, for keying its outcome: a module
    # whose process was killed (test_crash) cannot say
    imports = {e["module"]: e["imports"] for e in events if e["event"] == "module"}
    assert imports["depx/tests/test_plot.py"] is None
    optional = set(imports["depx/tests/test_optional.py"])
    assert {"depx", "partnerx", "absentx"} <= optional  # absentx: probed, not installed
    assert "helperx" not in optional


@pytest.mark.slow
def test_select_only_runs_nothing(tmp_path: Path) -> None:
    site = written_site(tmp_path)
    events = run_runner(site, "--select-only")
    assert [e["event"] for e in events] == [
        "environment",
        "dependent",
        "selected",
        "selected",
        "dependent",
        "done",
    ]
    optional = next(e for e in events if e.get("module") == "depx/tests/test_optional.py")
    assert optional["tests"] == ["test_uses"]
    partner = events[4]
    assert partner["dependent"] == "partnerx"
    assert partner["reason"] == "ships no tests"


@pytest.mark.slow
def test_a_module_the_host_keeps_is_not_run(tmp_path: Path) -> None:
    site = written_site(tmp_path)
    kept = "depx/tests/test_plot.py"
    events = run_runner(site, "--reuse-module", kept)
    assert not [e for e in events if e["event"] == "test" and e["module"] == kept]
    (said,) = [e for e in events if e["event"] == "module" and e["module"] == kept]
    assert said == {"event": "module", "dependent": "depx", "module": kept, "reused": True}
    ran = [e["test"] for e in events if e["event"] == "test"]
    assert ran == ["depx/tests/test_optional.py::test_uses"]


def _sdist(path: Path, members: dict[str, str], *, link: str | None = None) -> Path:
    """A .tar.gz with ``members`` (path -> text) and, if given, a symlink named ``link``."""
    with tarfile.open(path, "w:gz") as archive:
        for name, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        if link is not None:
            info = tarfile.TarInfo(link)
            info.type = tarfile.SYMTYPE
            info.linkname = "/etc/passwd"
            archive.addfile(info)
    return path


SDIST_TESTS = {
    # the package's own source in the sdist: importing it would be testing the sdist
    "partnerx-2.0/partnerx/__init__.py": "raise ImportError('the sdist source was imported')\n",
    "partnerx-2.0/setup.py": "raise SystemExit('never run')\n",
    "partnerx-2.0/tests/__init__.py": "",
    "partnerx-2.0/tests/conftest.py": (
        "import pytest\n\n@pytest.fixture\ndef legend():\n"
        "    import partnerx\n    return partnerx.Legend()\n"
    ),
    "partnerx-2.0/tests/test_with_depx.py": (
        "import depx\nimport partnerx\n\n"
        "def test_both(legend):\n"
        "    assert legend.legend_handles() == []\n    assert depx.VERSION == '1.0'\n"
        "    assert 'site' in partnerx.__file__\n"
    ),
}


@pytest.mark.slow
def test_a_dependent_without_shipped_tests_runs_its_sdist_tests_on_the_installed_wheel(
    tmp_path: Path,
) -> None:
    site = written_site(tmp_path)
    archive = _sdist(tmp_path / "partnerx-2.0.tar.gz", SDIST_TESTS)
    events = run_runner(site, "--sdist", f"partnerx={archive}", "--dependent", "partnerx")
    (planned,) = [e for e in events if e["event"] == "dependent"]
    assert planned["tests_from"] == "sdist"
    assert planned["modules"] == 1
    tests = {e["test"]: e for e in events if e["event"] == "test"}
    assert list(tests) == ["tests/test_with_depx.py::test_both"]
    assert tests["tests/test_with_depx.py::test_both"]["outcome"] == "passed", tests


# A wheel whose tests refuse to run without the data only its sdist has (as
# matplotlib's refuse without their baseline images).
GUARD = (
    "from pathlib import Path\n"
    "if not (Path(__file__).parent / 'baseline').exists():\n"
    "    raise OSError('The baseline directory does not exist')\n"
)
DATA_TEST = (
    "from pathlib import Path\nimport depx\n\n"
    "def test_against_baseline():\n"
    "    expected = (Path(__file__).parent / 'baseline' / 'expected.txt').read_text()\n"
    "    assert expected == depx.VERSION\n"
)
WHEEL_TESTS_WITHOUT_DATA = {
    "partnerx/tests/__init__.py": GUARD,
    "partnerx/tests/test_data.py": DATA_TEST,
}
SDIST_WITH_DATA = {
    "partnerx-2.0/lib/partnerx/__init__.py": "raise ImportError('the sdist source was imported')\n",
    "partnerx-2.0/lib/partnerx/tests/__init__.py": GUARD,
    "partnerx-2.0/lib/partnerx/tests/test_data.py": DATA_TEST,
    "partnerx-2.0/lib/partnerx/tests/baseline/expected.txt": "1.0",
}


@pytest.mark.slow
def test_tests_shipped_without_their_data_run_from_the_sdists_copy_of_them(
    tmp_path: Path,
) -> None:
    site = written_site(tmp_path)
    for rel, text in WHEEL_TESTS_WITHOUT_DATA.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(text)
    test_id = "partnerx/tests/test_data.py::test_against_baseline"

    shipped = run_runner(site, "--dependent", "partnerx")
    assert [e["tests_from"] for e in shipped if e["event"] == "dependent"] == ["wheel"]
    assert not [e for e in shipped if e["event"] == "test" and e["outcome"] == "passed"]

    archive = _sdist(tmp_path / "partnerx-2.0.tar.gz", SDIST_WITH_DATA)
    events = run_runner(site, "--sdist", f"partnerx={archive}", "--dependent", "partnerx")
    (planned,) = [e for e in events if e["event"] == "dependent"]
    assert planned["tests_from"] == "wheel+sdist"
    tests = {e["test"]: e["outcome"] for e in events if e["event"] == "test"}
    assert tests == {test_id: "passed"}


@pytest.mark.slow
def test_a_module_whose_collection_fails_on_a_warning_runs_with_warnings_shown(
    tmp_path: Path,
) -> None:
    site = written_site(tmp_path)
    extra = {
        # as matplotlib's conftest does: every warning an error
        "depx/tests/conftest.py": (
            "def pytest_configure(config):\n"
            "    config.addinivalue_line('filterwarnings', 'error')\n"
        ),
        "depx/tests/test_warns_at_import.py": (
            "import partnerx\n\npartnerx.old_api()  # a DeprecationWarning at import\n\n"
            "def test_after():\n    assert partnerx.Legend().legend_handles() == []\n"
        ),
    }
    for rel, text in extra.items():
        (site / rel).write_text(text)
    module = "depx/tests/test_warns_at_import.py"
    events = run_runner(site, "--dependent", "depx", "--module", module)
    tests = {e["test"]: e["outcome"] for e in events if e["event"] == "test"}
    assert tests == {f"{module}::test_after": "passed"}


def test_a_wheels_test_package_is_found_below_the_sdists_source_folder(tmp_path: Path) -> None:
    archive = _sdist(tmp_path / "p.tar.gz", {**SDIST_WITH_DATA, **SDIST_TESTS})
    into = tmp_path / "out"
    assert extract_tests(archive, into, ["partnerx/tests", "partnerx/other/tests"]) == [
        "partnerx/tests"
    ]
    found = sorted(p.relative_to(into).as_posix() for p in into.rglob("*") if p.is_file())
    # neither the package's source nor the sdist's top-level tests
    assert found == [
        "partnerx/tests/__init__.py",
        "partnerx/tests/baseline/expected.txt",
        "partnerx/tests/test_data.py",
    ]


def test_only_the_test_trees_of_an_sdist_are_extracted(tmp_path: Path) -> None:
    hostile = {
        **SDIST_TESTS,
        "partnerx-2.0/tests/../../escaped.py": "x = 1\n",
        "/abs/tests/rooted.py": "x = 1\n",
        "partnerx-2.0/testing/data.txt": "data\n",
    }
    archive = _sdist(tmp_path / "p.tar.gz", hostile, link="partnerx-2.0/tests/link.py")
    into = tmp_path / "out"
    assert extract_tests(archive, into) == ["testing", "tests"]
    found = sorted(p.relative_to(into).as_posix() for p in into.rglob("*") if p.is_file())
    assert found == [
        "testing/data.txt",
        "tests/__init__.py",
        "tests/conftest.py",
        "tests/test_with_depx.py",
    ]
    assert not (tmp_path / "escaped.py").exists()
    zipped = tmp_path / "p.zip"
    with zipfile.ZipFile(zipped, "w") as out:
        for name, text in SDIST_TESTS.items():
            out.writestr(name, text)
    assert extract_tests(zipped, tmp_path / "from-zip") == ["tests"]
    assert extract_tests(_sdist(tmp_path / "none.tar.gz", {"x-1/x.py": ""}), tmp_path / "n") == []
