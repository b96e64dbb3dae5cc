"""The smoke package's pure parts: distribution names, the check registry, and
the rule that it imports nothing but the standard library at module level."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path

import pytest

from compat.smoke import SMOKE_DIR, VERDICTS, dists, engine, isolate, runner_argv
from compat.smoke import checks as checks_module
from compat.smoke.checks import Check, builtin_checks, check, shims, version
from compat.smoke.versions import InvalidSpecifier
from tests.helpers.smoke import make_dist


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("scikit-learn", "scikit-learn"),
        ("Scikit_Learn", "scikit-learn"),
        ("python.dateutil", "python-dateutil"),
        ("numpy==2.0.2", "numpy"),
        ("pandas[performance]>=2", "pandas"),
        (" lightgbm ", "lightgbm"),
    ],
)
def test_canonical_names(given: str, expected: str) -> None:
    assert dists.canonical(given) == expected


def _dist(tmp_path: Path, name: str, files: dict[str, str]) -> importlib.metadata.Distribution:
    info = tmp_path / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    for file_name, text in files.items():
        (info / file_name).write_text(text)
    return importlib.metadata.PathDistribution(info)


def test_import_names_from_the_table_top_level_and_record(tmp_path: Path) -> None:
    assert dists.import_names("scikit-learn") == ["sklearn"]
    assert dists.import_names("Pillow") == ["PIL"]
    assert dists.import_names("python-dateutil") == ["dateutil"]
    assert dists.import_names("some-thing") == ["some_thing"]  # no metadata: a guess

    several = _dist(tmp_path / "a", "toolbox", {"top_level.txt": "_speedups\ntools\nextra\n"})
    assert dists.import_names("toolbox", several) == ["tools", "extra"]
    matching = _dist(
        tmp_path / "b", "setuptools", {"top_level.txt": "_distutils_hack\nsetuptools\n"}
    )
    assert dists.import_names("setuptools", matching) == ["setuptools"]
    recorded = _dist(
        tmp_path / "c",
        "weird-dist",
        {
            "RECORD": "\n".join(
                [
                    "weird_mod/__init__.py,,",
                    "weird_mod/core.py,,",
                    "single.py,,",
                    "_native.cpython-311-x86_64-linux-gnu.so,,",
                    "weird_dist-1.0.dist-info/METADATA,,",
                    "../../bin/weird,,",
                    "weird.pth,,",
                ]
            )
        },
    )
    assert dists.import_names("weird-dist", recorded) == ["weird_mod", "single"]


def test_modules_to_import_add_the_compiled_submodules() -> None:
    modules = dists.modules_to_import("matplotlib", None)
    assert modules[0] == "matplotlib"
    assert "matplotlib.pyplot" in modules
    assert dists.modules_to_import("scikit-learn", None)[:2] == ["sklearn", "sklearn.base"]
    assert dists.modules_to_import("rich", None) == ["rich"]


def test_ordered_puts_base_libraries_first() -> None:
    assert dists.ordered(["lightgbm", "zeta", "Pandas", "numpy", "pandas", "alpha"]) == [
        "numpy",
        "pandas",
        "lightgbm",
        "zeta",
        "alpha",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2.0.2", (2, 0, 2)),
        ("1.26.0rc1", (1, 26, 0)),
        ("2.1.0.dev0+git20240101", (2, 1, 0)),
        ("3.3.5", (3, 3, 5)),
        ("1.5", (1, 5)),
    ],
)
def test_version_tuples(text: str, expected: tuple[int, ...]) -> None:
    class Module:
        __version__ = text

    assert version(Module) == expected


def test_builtin_checks_are_named_by_what_they_need() -> None:
    checks = builtin_checks()
    names = [c.name for c in checks]
    assert len(names) == len(set(names))
    assert len(checks) >= 30
    for chk in checks:
        # one of the six, and canonical distribution names (their dependencies too)
        assert set(chk.needs) & set(dists.KNOWN_ORDER), chk
        assert all(dists.canonical(n) == n for n in chk.needs), chk
        prefix, _, short = chk.name.partition(":")
        assert prefix == "+".join(chk.needs)
        assert short
        assert short == short.lower()
        assert "_" not in short
        assert chk.summary, f"{chk.name} has no docstring"
    covered = {frozenset(c.needs) for c in checks}
    for pair in [
        {"numpy"},
        {"scipy"},
        {"matplotlib"},
        {"pandas", "numpy"},
        {"pandas", "matplotlib"},
        {"scikit-learn", "scipy"},
        {"scikit-learn", "pandas"},
        {"lightgbm", "numpy"},
        {"lightgbm", "pandas"},
        {"lightgbm", "scikit-learn"},
    ]:
        assert frozenset(pair) in covered, pair
    assert builtin_checks() == checks  # loading twice registers nothing twice


def _module_level_imports(path: Path) -> list[tuple[str, int]]:
    """(module, level) of every import outside a function body."""
    found: list[tuple[str, int]] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if isinstance(child, ast.Import):
                found.extend((alias.name, 0) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                found.append((child.module or "", child.level))
            visit(child)

    visit(ast.parse(path.read_text()))
    return found


@pytest.mark.parametrize(
    "path", sorted(SMOKE_DIR.rglob("*.py")), ids=lambda p: str(p.relative_to(SMOKE_DIR))
)
def test_smoke_modules_import_only_the_standard_library(path: Path) -> None:
    for module, level in _module_level_imports(path):
        if level:
            continue  # within the smoke package itself
        top = module.split(".")[0]
        assert top in sys.stdlib_module_names or top == "__future__", (path.name, module)


@pytest.mark.parametrize(
    "path", sorted(SMOKE_DIR.rglob("*.py")), ids=lambda p: str(p.relative_to(SMOKE_DIR))
)
def test_smoke_modules_parse_as_python_3_9(path: Path) -> None:
    tree = ast.parse(path.read_text(), feature_version=(3, 9))
    assert not any(isinstance(node, ast.Match) for node in ast.walk(tree))
    # Annotations may use 3.10 syntax only because they are never evaluated.
    assert any(
        isinstance(node, ast.ImportFrom) and node.module == "__future__" for node in tree.body
    ), "from __future__ import annotations is missing"


def test_runner_argv_matches_the_engine_parser(tmp_path: Path) -> None:
    sites = [str(tmp_path / "numpy"), str(tmp_path / "pandas")]
    for site in sites:
        Path(site).mkdir()
    argv = runner_argv(
        "/usr/bin/python3",
        sites=sites,
        packages=["numpy", "pandas"],
        checks_dirs=[str(tmp_path)],
        timeout=30,
        only=["pandas*"],
        exec_cmd=["python", "-m", "pytest", "/checks", "--timeout", "5"],
    )
    assert argv[:2] == ["/usr/bin/python3", "/opt/compat-smoke/runner.py"]
    args, command = engine.parse_args(argv[2:])
    assert args.site == sites
    assert args.checks_dir == [str(tmp_path)]
    assert args.package == ["numpy", "pandas"]
    assert args.timeout == 30.0
    assert args.only == ["pandas*"]
    assert command == ["python", "-m", "pytest", "/checks", "--timeout", "5"]


def test_verdicts_agree_with_the_engine() -> None:
    assert VERDICTS == engine.VERDICTS


@pytest.mark.slow
def test_builtin_numpy_checks_pass_on_the_host_numpy() -> None:
    """The real checks on the host's numpy (the test extra brings it; no network)."""
    proc = subprocess.run(
        [sys.executable, str(SMOKE_DIR / "runner.py"), "--package", "numpy", "--only", "numpy:*"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    results = {e["check"]: e for e in events if e["event"] == "result"}
    failed = {k: v["error"] for k, v in results.items() if v["verdict"] != "pass"}
    assert proc.returncode == 0
    assert not failed
    assert len(results) >= 6


def test_every_builtin_check_declares_the_releases_it_is_valid_for() -> None:
    for chk in builtin_checks():
        declared = {dist for dist, _ in chk.valid}
        assert declared, f"{chk.name} declares no valid range"
        assert declared <= set(chk.needs), chk.name


def _noop() -> None:
    """Does nothing."""


def test_a_check_outside_its_range_says_what_it_needs_and_what_is_there() -> None:
    chk = Check(
        name="lightgbm+scikit-learn:x",
        needs=("lightgbm", "scikit-learn"),
        func=_noop,
        valid=(("lightgbm", ">=3.0"), ("scikit-learn", ">=1.0")),
    )
    assert chk.invalid_for({"lightgbm": "3.3.5", "scikit-learn": "1.5.2"}) is None
    assert chk.invalid_for({"lightgbm": "2.3.1", "scikit-learn": "1.5.2"}) == (
        "needs lightgbm>=3.0, have 2.3.1"
    )
    assert chk.invalid_for({"lightgbm": "2.3.1"}) == (
        "needs lightgbm>=3.0, have 2.3.1; needs scikit-learn>=1.0, not installed"
    )
    # A version this evaluator cannot read is left to the check itself.
    assert chk.invalid_for({"lightgbm": "weird build", "scikit-learn": "1.5"}) is None


def test_check_registration_normalises_and_validates_ranges() -> None:
    registered: list[Check] = []
    decorate = check("scikit-learn", name="t:one", valid={"Scikit_Learn": ">= 1.2"})
    try:
        decorate(_noop)
        registered = [c for c in builtin_checks() if c.name == "t:one"]
        assert registered[0].valid == (("scikit-learn", ">=1.2"),)
    finally:
        checks_module._REGISTRY[:] = [c for c in checks_module._REGISTRY if c.name != "t:one"]
    with pytest.raises(InvalidSpecifier):
        check("numpy", valid={"numpy": "2.0"})


def _raise_from(filename: str, source: str) -> BaseException:
    """The exception ``source`` raises when its code lives in ``filename``."""
    namespace: dict[str, object] = {}
    code = compile(textwrap.dedent(source), filename, "exec")
    try:
        exec(code, namespace)
    except BaseException as exc:
        return exc
    raise AssertionError("the source raised nothing")


IN_CHECK = str(SMOKE_DIR / "checks" / "fake_check.py")
IN_LIBRARY = "/site/lightgbm/sklearn.py"


@pytest.mark.parametrize(
    ("where", "source", "expected"),
    [
        # The check calling an API its release lacks: a defect of the check.
        (IN_CHECK, "import math\nmath.no_such_function()", "check-error"),
        (IN_CHECK, "def fit(x): pass\nfit(1, callbacks=[])", "check-error"),
        (IN_CHECK, "def fit(x, y): pass\nfit(1)", "check-error"),
        (IN_CHECK, "len([], [])", "check-error"),
        (IN_CHECK, "sorted([], foo=1)", "check-error"),
        (IN_CHECK, "from math import no_such_name", "check-error"),
        (IN_CHECK, "import importlib\nimportlib.import_module('no_such_module_x')", "check-error"),
        # A wrong result, or any other error, is still a failure.
        (IN_CHECK, "assert 1 == 2", "runtime-error"),
        (IN_CHECK, "0 < None", "runtime-error"),
        (IN_CHECK, "1 / 0", "runtime-error"),
        # The same errors raised inside a library: one package calling another wrongly.
        (IN_LIBRARY, "import math\nmath.no_such_function()", "runtime-error"),
        (IN_LIBRARY, "def fit(x): pass\nfit(1, callbacks=[])", "runtime-error"),
        (IN_LIBRARY, "from math import no_such_name", "import-error"),
        (IN_CHECK, "import unittest\nraise unittest.SkipTest('no')", "skipped"),
    ],
)
def test_check_errors_are_told_from_failures(where: str, source: str, expected: str) -> None:
    assert isolate.classify_exception(_raise_from(where, source)) == expected


def test_a_library_error_reached_through_a_check_helper_is_not_a_check_error() -> None:
    namespace: dict[str, object] = {}
    exec(compile("def fit(x):\n    return x.missing_attribute\n", IN_LIBRARY, "exec"), namespace)
    caller: dict[str, object] = {"fit": namespace["fit"]}
    with pytest.raises(AttributeError) as raised:
        exec(compile("fit(object())\n", IN_CHECK, "exec"), caller)
    assert isolate.classify_exception(raised.value) == "runtime-error"


def test_a_module_getattr_answers_for_the_check() -> None:
    """numpy's module __getattr__ raising for a removed alias: the check's lookup."""
    namespace: dict[str, object] = {}
    exec(
        compile(
            "def __getattr__(name):\n    raise AttributeError(f'no {name}')\n",
            "/site/numpy/__init__.py",
            "exec",
        ),
        namespace,
    )
    module = types.ModuleType("numpy")
    setattr(module, "__getattr__", namespace["__getattr__"])  # noqa: B010 - mypy: no module attrs
    with pytest.raises(AttributeError) as raised:
        exec(compile("np.float_\n", IN_CHECK, "exec"), {"np": module})
    assert isolate.classify_exception(raised.value) == "check-error"


@pytest.mark.parametrize(
    ("where", "source", "sparse_input", "expected"),
    [
        # scikit-learn stating a requirement of the estimator: not a break.
        (
            "/v/site-packages/sklearn/cross_decomposition/_pls.py",
            "raise ValueError('n_components')",
            False,
            False,
        ),
        # ... unless it names SciPy (a solver the installed SciPy removed).
        (
            "/v/site-packages/sklearn/linear_model/_quantile.py",
            "raise ValueError('not in SciPy >= 1.11')",
            False,
            True,
        ),
        # A partner package rejecting what scikit-learn handed it: a break.
        (
            "/v/site-packages/scipy/optimize/_minimize.py",
            "raise ValueError('bad option')",
            False,
            True,
        ),
        (
            "/v/site-packages/numpy/core/fromnumeric.py",
            "raise ValueError('setting an array')",
            False,
            True,
        ),
        # Anything else is a break, wherever it is raised ...
        (
            "/v/site-packages/sklearn/svm/_base.py",
            "raise AttributeError('no attribute')",
            False,
            True,
        ),
        ("/v/site-packages/sklearn/svm/_base.py", "raise TypeError('unhashable')", False, True),
        # ... except an estimator refusing sparse input, or a documented gap.
        (
            "/v/site-packages/sklearn/utils/validation.py",
            "raise TypeError('A sparse matrix was passed')",
            True,
            False,
        ),
        ("/v/site-packages/sklearn/svm/_base.py", "raise NotImplementedError('no')", False, False),
    ],
)
def test_estimator_sweep_counts_only_breaks(
    where: str, source: str, sparse_input: bool, expected: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from compat.smoke.checks import sklearn_estimators

    monkeypatch.syspath_prepend("/v/site-packages")
    exc = _raise_from(where, source)
    assert sklearn_estimators.counts_as_break(exc, sparse_input=sparse_input) is expected


def test_a_sweep_past_its_time_share_leaves_items_out_instead_of_timing_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from compat.smoke.checks import sklearn_estimators

    monkeypatch.setattr(checks_module, "CHECK_TIMEOUT", 0.0)
    findings = sklearn_estimators.Findings()
    assert findings.out_of_time()
    assert findings.out_of_time()
    assert findings.left_out == 2
    findings.conclude("classifier")  # nothing ran, nothing broke: a miss, not a failure

    monkeypatch.setattr(checks_module, "CHECK_TIMEOUT", 60.0)
    in_time = sklearn_estimators.Findings()
    assert not in_time.out_of_time()
    with pytest.raises(AssertionError, match="only 0 classifier fits ran"):
        in_time.conclude("classifier")


def test_a_missing_optional_partner_is_not_a_break() -> None:
    absent = ModuleNotFoundError(
        "No module named 'no_such_partner_xyz'", name="no_such_partner_xyz"
    )
    assert checks_module.optional_dependency_missing(absent)
    assert not checks_module.breaks_stack(absent, partners=("scipy",))
    # A module that is installed but fails to import is a break.
    present = ModuleNotFoundError("No module named 'json.nothing'", name="json")
    assert not checks_module.optional_dependency_missing(present)
    assert checks_module.breaks_stack(present, partners=("scipy",))


@pytest.mark.parametrize(
    ("have", "keyword"),
    [("2.3.1", True), ("3.2.1", True), ("3.3.0", False), ("4.7.0", False)],
)
def test_early_stopping_in_fit_follows_where_lightgbm_reads_best_iteration(
    monkeypatch: pytest.MonkeyPatch, have: str, keyword: bool
) -> None:
    # Before 3.3 LGBM*.fit sets best_iteration_ only from early_stopping_rounds;
    # with the callback alone it stays None (calibration: lightgbm 3.0-3.2).
    fake = types.SimpleNamespace(early_stopping=lambda rounds, verbose: ("callback", rounds))
    monkeypatch.setattr(checks_module, "_installed_version", lambda dist: have)
    monkeypatch.setattr(shims, "mod", lambda name: fake)
    given = shims.lgb_early_stopping_fit(10)
    if keyword:
        assert given == {"early_stopping_rounds": 10, "verbose": False}
    else:
        assert given == {"callbacks": [("callback", 10)]}


@pytest.mark.slow
def test_estimators_of_other_packages_are_found_through_their_requirements(
    tmp_path: Path,
) -> None:
    """Packages requiring scikit-learn (an extra counts) offer their own public,
    concrete estimator classes; a re-exported or private one, or a package that
    does not require scikit-learn, offers none; a lazy attribute that needs what is
    not installed is left out, not a failure."""
    site = tmp_path / "site"
    make_dist(site, "scikit-learn", "sklearn", "", submodules=("base",))
    (site / "sklearn" / "base.py").write_text("class BaseEstimator:\n    pass\n")
    boost = """
        import abc
        from sklearn.base import BaseEstimator
        class BoostClassifier(BaseEstimator):
            pass
        class _Hidden(BaseEstimator):
            pass
        class Abstract(BaseEstimator, abc.ABC):
            @abc.abstractmethod
            def fit(self): ...
        class NotAnEstimator:
            pass
        def __getattr__(name):
            if name == "GPUBoost":  # a lazy attribute needing what is not installed
                raise ImportError("GPUBoost requires an accelerator backend to be installed")
            raise AttributeError(name)
        __all__ = ["BoostClassifier", "GPUBoost", "NotAnEstimator"]
    """
    make_dist(site, "boost-x", "boost_x", boost, requires=("scikit-learn; extra == 'sk'",))
    make_dist(site, "plain", "plain", "from boost_x import BoostClassifier\n")
    script = (
        "from compat.smoke.checks.sklearn_others import dependents, estimators_of\n"
        "found = dependents()\n"
        "print([d.metadata['Name'] for d in found])\n"
        "print([name for d in found for name, _ in estimators_of(d)])\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PYTHONPATH": f"{site}{os.pathsep}{SMOKE_DIR.parent.parent}"},
    )
    assert proc.returncode == 0, proc.stderr
    dependent, left_out, estimators = proc.stdout.splitlines()
    assert dependent == "['boost-x']"
    assert left_out.startswith("--- boost_x.GPUBoost: not available: ImportError")
    assert estimators == "['boost_x.BoostClassifier']"


def _slow_library_call() -> None:
    try:
        time.sleep(5)
    except Exception:  # a library's handler does not swallow it
        pytest.fail("OutOfTime was caught as an Exception")


def test_an_item_past_the_sweeps_deadline_is_stopped_and_the_alarm_restored() -> None:
    previous = signal.getsignal(signal.SIGALRM)
    started = time.monotonic()
    with pytest.raises(checks_module.OutOfTime), checks_module.until(started + 0.2):
        _slow_library_call()
    assert time.monotonic() - started < 2
    assert signal.getsignal(signal.SIGALRM) is previous
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    with pytest.raises(checks_module.OutOfTime), checks_module.until(started):
        pytest.fail("a block past its deadline does not start")
    with checks_module.until(time.monotonic() + 5):
        pass  # in time: nothing raised


def test_the_package_that_raised_is_found_in_any_site_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The harness composes combinations from unpacked wheels in directories that
    # are not called site-packages: the package is the top level of the innermost
    # frame under a directory of sys.path, frames of the standard library skipped.
    site_dir = tmp_path / "installs" / "0123abcd"
    (site_dir / "partnerpkg").mkdir(parents=True)
    (site_dir / "partnerpkg" / "__init__.py").write_text(
        "import json\n\ndef parse(text):\n    return json.loads(text)\n"
    )
    monkeypatch.syspath_prepend(str(site_dir))
    partner = __import__("partnerpkg")
    try:
        with pytest.raises(ValueError, match="property name") as raised:
            partner.parse("{not json")
        assert checks_module.raised_in(raised.value) == "partnerpkg"
        assert checks_module.breaks_stack(raised.value, partners=("partnerpkg",))
        assert not checks_module.breaks_stack(raised.value, partners=("scipy",))
    finally:
        sys.modules.pop("partnerpkg", None)
    # raised by the standard library, called from code outside sys.path: no package
    namespace: dict[str, object] = {}
    source = "import json\ndef caught():\n    try:\n        json.loads('{x')\n"
    source += "    except ValueError as exc:\n        return exc\n"
    exec(compile(source, "<check>", "exec"), namespace)
    assert checks_module.raised_in(namespace["caught"]()) is None  # type: ignore[operator]
