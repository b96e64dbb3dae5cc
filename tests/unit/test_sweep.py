"""Reading a whole-package import's failures from its log, and judging them
against the same release's baseline."""

from __future__ import annotations

from compat.model import CheckKind, CheckResult, CheckVerdict
from compat.sweep import compare, failed_modules, sweep_failed

ABI = (
    "ValueError: numpy.dtype size changed (statsmodels 0.14.1 was compiled against NumPy 1.x; "
    "NumPy 2.0.2 is installed; partner: numpy 2.0.2)"
)
PANEL = "ImportError: cannot import name 'Panel' from 'pandas' (at panelmod.py:17; partner: pandas)"
DATA = "FileNotFoundError: dftest3.data not found. (at _datasource.py:532; partner: numpy 2.0.2)"
LOG = f"""statsmodels 0.14.1 in /site
imported statsmodels from /site/statsmodels/__init__.py
statsmodels 0.14.1: 534 modules, 440 imported, 16 not applicable, 0 not attributed, 4 failed
failed: statsmodels.nonparametric._smoothers_lowess: {ABI}
  1 more with the same error: statsmodels.api
failed: statsmodels.sandbox.panel.panelmod: {PANEL}
failed: statsmodels.sandbox.regression.ols_anova_original: {DATA}
not applicable:
  statsmodels.graphics.tukeyplot: needs matplotlib, which is not installed
--- statsmodels.nonparametric._smoothers_lowess ---
Traceback (most recent call last):
  File "/site/statsmodels/api.py", line 1, in <module>
"""


def _check(error: str, log: str = LOG) -> CheckResult:
    return CheckResult(
        name="import:statsmodels",
        kind=CheckKind.IMPORT,
        verdict=CheckVerdict.IMPORT_ERROR,
        duration=1.0,
        error=error,
        log=log,
    )


def test_failed_modules_read_every_module_of_every_group() -> None:
    assert failed_modules(LOG) == {
        "statsmodels.nonparametric._smoothers_lowess": ABI,
        "statsmodels.api": ABI,
        "statsmodels.sandbox.panel.panelmod": PANEL,
        "statsmodels.sandbox.regression.ols_anova_original": DATA,
    }


def test_only_a_failed_sweep_is_compared() -> None:
    assert sweep_failed(_check(f"statsmodels.sandbox.panel.panelmod: {PANEL}"))
    # an essential module failed: the package does not import, nothing to compare
    essential = LOG.replace(
        "failed: statsmodels.non",
        "essential modules failed: statsmodels\nfailed: statsmodels.non",
        1,
    )
    assert sweep_failed(_check(f"statsmodels.sandbox.panel.panelmod: {PANEL}", essential)) == {}
    # so said by a runner before that line: the error did not name a module
    assert sweep_failed(_check("ImportError: libfoo.so.1: cannot open shared object")) == {}
    passed = CheckResult(
        name="import:statsmodels", kind=CheckKind.IMPORT, verdict=CheckVerdict.PASS, duration=1.0
    )
    assert sweep_failed(passed) == {}


def test_failures_the_baseline_shares_are_not_attributed_but_abi_ones_count() -> None:
    check = _check(f"statsmodels.nonparametric._smoothers_lowess: {ABI} (and 3 more modules)")
    baseline = {
        # the same module failing with the same exception (another message is fine)
        "statsmodels.sandbox.panel.panelmod": "ImportError: cannot import name 'Panel'",
        "statsmodels.sandbox.regression.ols_anova_original": DATA,
        # the same module, another exception: not the same failure
        "statsmodels.api": "RuntimeError: something else",
        "statsmodels.nonparametric._smoothers_lowess": ABI,
    }
    judged = compare(check, baseline, "statsmodels 0.14.1 with numpy 1.26.4")
    assert judged.verdict is CheckVerdict.IMPORT_ERROR
    assert (
        judged.error == f"statsmodels.nonparametric._smoothers_lowess: {ABI} (and 1 more modules)"
    )
    assert judged.log.endswith(
        "not attributed, failing the same way on the baseline (statsmodels 0.14.1 with numpy "
        "1.26.4): statsmodels.sandbox.panel.panelmod, "
        "statsmodels.sandbox.regression.ols_anova_original"
    )


def test_a_sweep_whose_failures_all_fail_on_the_baseline_passes() -> None:
    log = "\n".join(line for line in LOG.splitlines() if "_smoothers_lowess" not in line)
    log = log.replace("  1 more with the same error: statsmodels.api\n", "")
    check = _check(f"statsmodels.sandbox.panel.panelmod: {PANEL}", log)
    judged = compare(
        check,
        failed_modules(log),
        "statsmodels 0.14.4 with its contemporaneous partners",
    )
    assert judged.verdict is CheckVerdict.PASS
    assert judged.error is None
    assert compare(check, {}, "none") is check


def test_only_a_failure_off_the_binary_interface_needs_a_baseline() -> None:
    from compat.sweep import wants_baseline

    abi_only = "\n".join(line for line in LOG.splitlines() if "sandbox" not in line)
    assert not wants_baseline(_check(f"statsmodels.api: {ABI}", abi_only))
    assert wants_baseline(_check(f"statsmodels.api: {ABI}"))
