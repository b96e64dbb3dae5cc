"""deep/imports.judge_imports over a scripted pipeline with a real SQLite results
database: module failures a release's baseline shares are not attributed, the
baseline runs once per image, a binary-interface failure always counts."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import pytest

from compat.deep.imports import judge_imports
from compat.index.base import Index
from compat.model import CheckKind, CheckResult, CheckVerdict, Combo, ComboResult, Verdict
from compat.store import Store
from compat.targets.target import Target
from tests.helpers.deep import combo_of_versions
from tests.helpers.pipeline import ScriptedPipeline
from tests.helpers.report import make_target
from tests.helpers.reporter import RecordingReporter

HERE = combo_of_versions({"statsmodels": "0.14.4", "numpy": "2.0.2", "pandas": "2.2.3"})
BASELINE = combo_of_versions({"statsmodels": "0.14.4", "numpy": "2.1.1", "pandas": "2.2.3"})
ABI = (
    "ValueError: numpy.dtype size changed (statsmodels 0.14.4 was compiled against NumPy 1.x;"
    " NumPy 2.0.2 is installed; partner: numpy 2.0.2)"
)
PANEL = "ImportError: cannot import name 'Panel' from 'pandas' (at panelmod.py:17; partner: pandas)"


def sweep_check(*failed: tuple[str, str]) -> CheckResult:
    """An import check of statsmodels whose whole-package import failed ``failed``."""
    lines = [f"statsmodels 0.14.4: 500 modules, 490 imported, {len(failed)} failed"]
    lines += [f"failed: {module}: {error}" for module, error in failed]
    return CheckResult(
        name="import:statsmodels",
        kind=CheckKind.IMPORT,
        verdict=CheckVerdict.IMPORT_ERROR if failed else CheckVerdict.PASS,
        duration=1.0,
        error=f"{failed[0][0]}: {failed[0][1]}" if failed else None,
        log="\n".join(lines),
    )


def baseline_failing(*failed: tuple[str, str]) -> ScriptedPipeline:
    """A pipeline whose import check fails ``failed`` (module, error); it
    remembers what it ran."""

    def smoke(target: Target, combo: Combo) -> ComboResult:
        check = sweep_check(*failed)
        return ComboResult(combo=combo, verdict=Verdict(check.verdict.value), checks=(check,))

    return ScriptedPipeline(smoke)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store.open(f"sqlite:///{tmp_path / 'results.db'}")
    target = make_target("bookworm")
    with store.run(target, backend="fake") as run_id:  # the known-good baseline
        good = ComboResult(combo=BASELINE, verdict=Verdict.PASS, image_id=target.image_id)
        store.record(run_id, target, good)
    return store


def judge(store: Store, pipeline: ScriptedPipeline, *failed: tuple[str, str]) -> ComboResult:
    target = make_target("bookworm")
    check = sweep_check(*failed)
    result = ComboResult(
        combo=HERE,
        verdict=Verdict.IMPORT_ERROR,
        checks=(check,),
        failed_check=check.name,
        error=check.error,
        image_id=target.image_id,
    )
    return judge_imports(
        result,
        target=target,
        pipeline=pipeline,
        store=store,
        index=cast("Index", object()),  # knows no upload times: the known-good baseline
        reporter=RecordingReporter(),
    )


def test_failures_the_baseline_shares_pass_and_the_baseline_runs_once(store: Store) -> None:
    pipeline = baseline_failing(("statsmodels.sandbox.panel.panelmod", PANEL))
    judged = judge(store, pipeline, ("statsmodels.sandbox.panel.panelmod", PANEL))
    assert judged.verdict is Verdict.PASS
    assert judged.error is None
    assert judged.checks[0].verdict is CheckVerdict.PASS
    assert "not attributed, failing the same way on the baseline" in judged.checks[0].log
    assert pipeline.ran == [BASELINE]
    # cached per image: a second combination holding the release runs no baseline
    again = judge(store, pipeline, ("statsmodels.sandbox.panel.panelmod", PANEL))
    assert again.verdict is Verdict.PASS
    assert pipeline.ran == [BASELINE]


def test_a_failure_only_here_and_a_binary_interface_one_count(store: Store) -> None:
    pipeline = baseline_failing(
        ("statsmodels.sandbox.panel.panelmod", PANEL), ("statsmodels.api", ABI)
    )
    judged = judge(
        store,
        pipeline,
        ("statsmodels.api", ABI),
        ("statsmodels.sandbox.panel.panelmod", PANEL),
        ("statsmodels.tsa.api", "AttributeError: module 'numpy' has no attribute 'Inf'"),
    )
    assert judged.verdict is Verdict.IMPORT_ERROR
    assert judged.failed_check == "import:statsmodels"
    assert judged.error == f"statsmodels.api: {ABI} (and 1 more modules)"


def test_a_baseline_that_did_not_import_judges_nothing_and_is_not_kept(store: Store) -> None:
    def crashed(target: Target, combo: Combo) -> ComboResult:
        return ComboResult(combo=combo, verdict=Verdict.CRASH, error="Segmentation fault")

    pipeline = ScriptedPipeline(crashed)
    judged = judge(store, pipeline, ("statsmodels.sandbox.panel.panelmod", PANEL))
    assert judged.verdict is Verdict.IMPORT_ERROR  # every module that failed counts
    assert judged.checks[0].verdict is CheckVerdict.IMPORT_ERROR
    assert (
        "import: the baseline of statsmodels did not import (Segmentation fault): "
        "every module that failed counts"
    ) in judged.notes
    judge(store, pipeline, ("statsmodels.sandbox.panel.panelmod", PANEL))
    assert pipeline.ran == [BASELINE, BASELINE]  # nothing kept: tried again
