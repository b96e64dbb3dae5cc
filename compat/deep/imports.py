"""Failed whole-package imports judged against their baselines: a module that
fails the same way on the same release's baseline (a sandbox script needing a data
file, a module for another platform) implicates no partner here."""

from __future__ import annotations

import dataclasses

from compat.deep.baseline import Baseline, choose_baseline, contemporaneous_for
from compat.deep.keys import sweep_key
from compat.deep.step import ran_on
from compat.harness.runner import Runner
from compat.index.base import Index
from compat.model import CheckVerdict, ComboResult, Verdict, overall
from compat.reporter import Reporter
from compat.store import Store
from compat.sweep import compare, dependent_of, failed_modules, sweep_failed, wants_baseline
from compat.targets.target import Target


def judge_imports(
    result: ComboResult,
    *,
    target: Target,
    pipeline: Runner,
    store: Store,
    index: Index,
    reporter: Reporter,
) -> ComboResult:
    """``result`` with each module that failed its whole-package import compared
    with the same release's baseline: one that fails the same way there (a
    sandbox script needing a data file, a module for another platform) implicates
    no partner here and is not attributed. The baseline runs once per image and
    is cached; without one, every failure counts."""
    failing = [c for c in result.checks if wants_baseline(c)]
    if not failing:
        return result
    here = result.combo
    image_id, packages = ran_on(result, target=target, store=store)
    judged_checks = {c.name: c for c in result.checks}
    notes = list(result.notes)
    for check in failing:
        dependent = dependent_of(check)
        assert dependent is not None  # only import checks need a baseline
        own = contemporaneous_for(here, dependent, index=index, target=target)
        if own is not None and own.versions == here.versions:
            # here is the release with its own contemporaries: what fails is its own
            judged_checks[check.name] = compare(
                check, failed_modules(check.log), "its own contemporaneous stack"
            )
            continue
        known_good = [g.combo for g in store.known_good(target)]
        baseline = choose_baseline(here, dependent, contemporaneous=own, known_good=known_good)
        if baseline is None:
            notes.append(f"import: no baseline for {dependent}: every module that failed counts")
            continue
        cached = _baseline_failures(
            check.name,
            baseline,
            image_id=image_id,
            packages=packages,
            target=target,
            pipeline=pipeline,
            store=store,
            reporter=reporter,
        )
        if isinstance(cached, str):
            notes.append(cached)
            continue
        judged_checks[check.name] = compare(
            check, {str(o["module"]): str(o["error"]) for o in cached}, baseline.combo.label()
        )
    checks = tuple(judged_checks.values())
    if result.verdict is not Verdict.IMPORT_ERROR:  # something else decided it
        return dataclasses.replace(result, checks=checks, notes=tuple(notes))
    verdict, culprit = overall(checks)
    return dataclasses.replace(
        result,
        checks=checks,
        notes=tuple(notes),
        verdict=verdict,
        failed_check=culprit.name if culprit else None,
        error=culprit.error if culprit else None,
    )


def _baseline_failures(
    name: str,
    baseline: Baseline,
    *,
    image_id: str,
    packages: tuple[str, ...],
    target: Target,
    pipeline: Runner,
    store: Store,
    reporter: Reporter,
) -> list[dict[str, object]] | str:
    """The modules that fail the import check ``name`` on ``baseline`` (each its
    module and error), cached once per image; or, when the baseline did not import,
    the note that says so."""
    dependent = baseline.dependent
    key = sweep_key(baseline, image_id)
    cached = store.deep_baseline(key).get(dependent)
    if cached is not None:
        return cached
    reporter.notice(
        f"import: importing every module of {dependent} {baseline.version} "
        f"on its baseline ({baseline.combo.label()})"
    )
    (ran,) = pipeline.run(
        target,
        [baseline.combo],
        on_result=lambda _: None,
        reporter=Reporter(),
        system_packages=packages,
    )
    theirs = next((c for c in ran.checks if c.name == name), None)
    if theirs is None or (theirs.verdict is not CheckVerdict.PASS and not sweep_failed(theirs)):
        return (
            f"import: the baseline of {dependent} did not import "
            f"({ran.error or ran.verdict.value}): every module that failed counts"
        )
    found: list[dict[str, object]] = [
        {"module": m, "error": e} for m, e in failed_modules(theirs.log).items()
    ]
    store.record_deep_baseline(
        key=key,
        dependent=dependent,
        version=str(baseline.version),
        image_id=image_id,
        pins=[str(p) for p in baseline.combo.pins],
        modules={dependent: found},
    )
    return found


__all__ = ["judge_imports"]
