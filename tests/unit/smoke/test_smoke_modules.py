"""The whole-package import: which files are modules, and how each failure is
judged, run through the runner on a fake site directory."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path

import pytest

from compat.smoke import modules
from compat.smoke.checks import optional_dependency_missing
from compat.smoke.modules import abi_words, module_names
from tests.helpers.smoke import make_dist, run_runner


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (["pkg/__init__.py", "pkg/a.py", "pkg/sub/__init__.py", "pkg/sub/b.py"],
         ["pkg", "pkg.a", "pkg.sub", "pkg.sub.b"]),
        # compiled modules count; a plain shared library beside them does not
        (["pkg/__init__.py", "pkg/_c.cpython-311-x86_64-linux-gnu.so", "pkg/_d.abi3.so",
          "pkg/libhelper.so", "pkg.libs/libgfortran.so.5"],
         ["pkg", "pkg._c", "pkg._d"]),
        # test code, vendored trees, examples, sandboxes, __main__ and data folders are
        # left out
        (["pkg/__init__.py", "pkg/tests/__init__.py", "pkg/tests/test_x.py", "pkg/conftest.py",
          "pkg/_vendor/__init__.py", "pkg/_vendor/six.py", "pkg/__main__.py",
          "pkg/data/script.py", "pkg/mpl-data/x.py", "pkg/test_helpers.py",
          "pkg/sandbox/__init__.py", "pkg/sandbox/mle.py", "pkg/examples/__init__.py",
          "pkg/examples/ex_fit.py"],
         ["pkg"]),
        # a top-level module, a namespace folder above a package, metadata left out
        (["six.py", "google/protobuf/__init__.py", "google/protobuf/m.py",
          "six-1.0.dist-info/RECORD", "../../bin/tool"],
         ["google.protobuf", "google.protobuf.m", "six"]),
    ],
)  # fmt: skip
def test_module_names(files: list[str], expected: list[str]) -> None:
    assert module_names(Path(f).parts for f in files) == expected


def test_abi_words_say_which_numpy_it_was_built_for() -> None:
    size = "ValueError: numpy.dtype size changed. Expected 96 from C header, got 88 from PyObject"
    assert abi_words("statsmodels", "0.14.1", size, "2.0.2") == (
        "statsmodels 0.14.1 was compiled against NumPy 1.x; NumPy 2.0.2 is installed"
    )
    newer = "module compiled against ABI version 0x2000000 but this version of numpy is 0x1000009"
    assert abi_words("pkg", "1.0", newer, "1.26.4") == (
        "pkg 1.0 was compiled against NumPy 2.x; NumPy 1.26.4 is installed"
    )
    assert abi_words("pkg", "1.0", "ValueError: something else", "2.0.2") is None


def _package(site: Path, name: str, files: dict[str, str]) -> None:
    for path, source in files.items():
        (site / path).parent.mkdir(parents=True, exist_ok=True)
        (site / path).write_text(textwrap.dedent(source))
    info = site / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "RECORD").write_text("".join(f"{p},,\n" for p in files))


@pytest.fixture
def site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    _package(site, "partner", {"partner/__init__.py": "present = 1\n"})
    _package(
        site,
        "pkg",
        {
            "pkg/__init__.py": "",
            "pkg/fine.py": "import partner\n",
            "pkg/optional.py": "import nosuchdep\n",
            "pkg/wrapped.py": """
                try:
                    import nosuchdep
                except ImportError as exc:
                    raise ImportError("pkg.wrapped requires nosuchdep: pip install it") from exc
            """,
            "pkg/platform.py": "from . import _macosx\n",
            "pkg/windows.py": """
                raise ImportError("cannot import name 'winreg' from 'six.moves'")
            """,
            "pkg/broken.py": "from partner import removed\n",
            "pkg/crashes.py": "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n",
            "pkg/later.py": "import partner\n",
            "pkg/selfish.py": "raise RuntimeError('needs a data file')\n",
            "pkg/script.py": "import sys\nsys.exit(2)\n",
            "pkg/tests/__init__.py": "raise AssertionError('test code is not imported')\n",
            "pkg/__main__.py": "raise AssertionError('__main__ is not imported')\n",
        },
    )
    return site


@pytest.mark.slow
def test_every_module_is_imported_and_each_failure_judged(site: Path) -> None:
    run = run_runner("--site", str(site), "--package", "pkg", "--only", "none")
    check = run.results["import:pkg"]
    log = check["log"]
    assert check["verdict"] == "crash"  # the worst module decides
    assert "pkg 1.0: 11 modules, 3 imported, 4 not applicable, 2 not attributed, 2 failed" in log
    assert "pkg.optional: needs nosuchdep, which is not installed" in log
    assert "pkg.wrapped: needs nosuchdep, which is not installed" in log
    assert "pkg.platform: pkg._macosx is not built for this platform" in log
    assert "pkg.windows: needs winreg, which this Python does not have" in log
    assert "failed: pkg.broken: ImportError: cannot import name 'removed' from 'partner'" in log
    assert "partner: partner 1.0" in log
    assert "failed: pkg.crashes: killed by signal SIGSEGV" in log
    assert (
        "not attributed (fails by itself, no partner implicated):\n"
        "  pkg.script: sys.exit(2)\n"
        "  pkg.selfish: RuntimeError: needs a data file (at selfish.py:1)"
    ) in log
    # the crash is charged to its module, and the modules after it still ran
    assert "pkg.later" not in log
    assert run.results["import:partner"]["verdict"] == "pass"


@pytest.mark.slow
def test_a_partner_whose_import_check_is_reused_is_still_named(site: Path) -> None:
    run = run_runner(
        "--site", str(site), "--package", "pkg", "--only", "none", "--reuse", "import:partner"
    )  # fmt: skip
    assert "import:partner" not in run.results
    log = run.results["import:pkg"]["log"]
    assert "failed: pkg.broken: ImportError: cannot import name 'removed' from 'partner'" in log
    assert "partner: partner 1.0" in log


@pytest.mark.slow
def test_an_essential_module_that_does_not_import_fails_the_check_whatever_it_needed(
    tmp_path: Path,
) -> None:
    site = tmp_path / "site"
    # the top level needs what is not installed: an import-error, never "not applicable"
    make_dist(site, "needy", "needy", "import not_installed_here\n", submodules=("more",))
    # a submodule that needs it is an optional part: not applicable
    make_dist(site, "optional", "optional", "", submodules=("extra",))
    (site / "optional" / "extra.py").write_text("import not_installed_here\n")
    run = run_runner("--site", str(site), "--package", "needy", "--only", "none")
    needy = run.results["import:needy"]
    assert needy["verdict"] == "import-error"
    assert needy["error"] == (
        "needy: ModuleNotFoundError: No module named 'not_installed_here' (at __init__.py:1)"
    )
    assert "essential modules failed: needy" in needy["log"]  # never baseline-compared
    # below the top level, judged as ever
    assert "needy.more: needs not_installed_here, which is not installed" in needy["log"]
    optional = run.results["import:optional"]
    assert optional["verdict"] == "pass"
    assert "optional.extra: needs not_installed_here, which is not installed" in optional["log"]
    assert f"imported from {site / 'optional' / '__init__.py'}" in optional["log"]


@pytest.mark.slow
@pytest.mark.parametrize(("numpy", "judged"), [("1.26.4", "n/a"), ("2.2.6", "failed")])
def test_a_submodule_built_for_numpy_2_alone_is_not_applicable_under_numpy_1(
    tmp_path: Path, numpy: str, judged: str
) -> None:
    site = tmp_path / "site"
    _package(site, "numpy", {"numpy/__init__.py": f"__version__ = '{numpy}'\n"})
    (site / "numpy-1.0.dist-info" / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: numpy\nVersion: {numpy}\n"
    )
    failing = "import numpy\nraise ImportError('numpy._core.multiarray failed to import')\n"
    _package(site, "strs", {"strs/__init__.py": "", "strs/_npystrings.py": failing})
    run = run_runner("--site", str(site), "--package", "strs", "--only", "none")
    log = run.results["import:strs"]["log"]
    if judged == "n/a":
        assert run.results["import:strs"]["verdict"] == "pass", log
        assert f"strs._npystrings: built for NumPy 2 alone; NumPy {numpy} is installed" in log
    else:
        assert run.results["import:strs"]["verdict"] == "import-error", log


@pytest.mark.slow
def test_a_failure_of_another_distributions_numpy_build_is_that_distributions(
    tmp_path: Path,
) -> None:
    # plotter was compiled against NumPy 1.x (its compiled module fails as NumPy 2's
    # shim makes it); pure-Python user imports it in a submodule (as a scipy script
    # imports matplotlib), app in its top level (as seaborn does)
    site = tmp_path / "site"
    _package(site, "numpy", {"numpy/__init__.py": "", "numpy/shim.py": """
        def fail():
            raise ImportError("numpy.core.multiarray failed to import")
    """})  # fmt: skip
    (site / "numpy-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: numpy\nVersion: 2.0.2\n"
    )
    _package(site, "plotter", {"plotter/__init__.py": "import numpy.shim\nnumpy.shim.fail()\n"})
    _package(site, "user", {"user/__init__.py": "", "user/plots.py": "import plotter\n"})
    _package(site, "app", {"app/__init__.py": "import plotter\n"})
    run = run_runner(
        "--site", str(site), "--package", "plotter", "--package", "user", "--package", "app",
        "--only", "none",
    )  # fmt: skip
    words = "plotter 1.0 was compiled against NumPy 1.x; NumPy 2.0.2 is installed"
    plotter = run.results["import:plotter"]
    assert plotter["verdict"] == "import-error"
    assert plotter["error"].startswith("plotter: ImportError: numpy.core.multiarray failed")
    assert f"({words}; partner: numpy 2.0.2)" in plotter["error"]
    # not user's failure: plotter's own import check fails so
    user = run.results["import:user"]
    assert user["verdict"] == "pass", user["log"]
    assert f"user.plots: needs plotter: {words} (import:plotter fails)" in user["log"]
    # a top level that does not import fails its check, in words naming the build
    app = run.results["import:app"]
    assert app["verdict"] == "import-error"
    assert f"({words}; partner: numpy 2.0.2)" in app["error"], app["error"]


def test_an_error_naming_a_module_tried_and_not_installed_is_an_optional_dependency_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    monkeypatch.setattr(modules, "_TRIED", modules._Tried())
    modules.record_imports()
    with pytest.raises(ImportError):
        import compat_absent_dependency  # type: ignore[import-not-found]  # noqa: F401
    assert importlib.util.find_spec("colorsys") is not None  # tried, and installed
    assert "colorsys" in modules._TRIED.tops or "colorsys" in sys.modules

    said = RuntimeError("compat_absent_dependency is required for colorsys features")
    assert modules.named_absent(str(said)) == ["compat_absent_dependency"]
    assert optional_dependency_missing(said)
    # a module never tried, or one installed, is no such excuse
    assert not optional_dependency_missing(RuntimeError("compat_never_tried is required"))
    assert not optional_dependency_missing(RuntimeError("colorsys is required"))
