"""The deep tier as a workflow step: a combination that passed its smoke suite
runs its dependents' shipped tests; the ones that fail are run on each
dependent's baseline (cached in the results database), and only attributed
regressions change the verdict (see :mod:`compat.deep`)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from packaging.utils import NormalizedName

from compat.config import RunConfig, Timeouts
from compat.deep import judge
from compat.deep.baseline import Baseline, choose_baseline, partners_of
from compat.deep.differential import needs_baseline
from compat.deep.outcomes import DeepRun, TestOutcome, parse_events
from compat.deep.report import DeepReport, check_results
from compat.errors import CompatError, HarnessError, UsageError
from compat.harness.deep import DeepJob, DeepOutcome, sdist_refs
from compat.harness.reuse import KeptChecks
from compat.index.asof import DatedIndex
from compat.index.base import Index
from compat.model import (
    CheckKind,
    CheckResult,
    CheckVerdict,
    Combo,
    ComboResult,
    Verdict,
    overall,
)
from compat.reporter import Reporter
from compat.resolve.candidates import CandidateSource, requested
from compat.resolve.history import WHEELS_ONLY, contemporaneous_stack
from compat.resolve.resolver import Resolver
from compat.smoke import SMOKE_DIR
from compat.smoke.deep import DEEP_DIR
from compat.store import Store
from compat.sweep import compare, dependent_of, failed_modules, sweep_failed, wants_baseline
from compat.targets.target import Target

log = logging.getLogger("compat.deep")

TEST_LAYER = ("pytest", "hypothesis")
"""What the shipped test modules need besides the combination itself."""


class Runner(Protocol):
    """What workflows need of the harness (``compat.harness.Pipeline``, or a fake)."""

    @property
    def kind(self) -> str: ...

    def run(
        self,
        target: Target,
        combos: Sequence[Combo],
        *,
        on_result: Callable[[ComboResult], None],
        reporter: Reporter,
        system_packages: Sequence[str] = (),
        kept: KeptChecks | None = None,
    ) -> list[ComboResult]: ...


@runtime_checkable
class DeepRunner(Protocol):
    """What the deep step needs of the harness (``compat.harness.Pipeline``)."""

    def run_deep(
        self,
        target: Target,
        jobs: Sequence[DeepJob],
        test_layer: Combo,
        *,
        timeout: float,
        system_packages: Sequence[str] = (),
        reporter: Reporter,
    ) -> list[DeepOutcome]: ...


def deepens(result: ComboResult) -> bool:
    """Whether the deep tier runs on ``result``: where the stack imports and runs.
    After a passing smoke suite it can find what the suite missed; after one that
    failed at run time it adds attributed evidence (which partner changed)."""
    return result.verdict in (Verdict.PASS, Verdict.RUNTIME_ERROR)


def test_layer_for(index: Index, target: Target) -> Combo:
    """pytest and hypothesis resolved for the target, as a combination of their own."""
    resolved = Resolver(CandidateSource(index, target, WHEELS_ONLY)).resolve(
        [requested(n) for n in TEST_LAYER]
    )
    if not isinstance(resolved, Combo):
        raise HarnessError(f"cannot resolve the deep tier's test layer: {resolved}")
    return resolved


def baseline_for(
    here: Combo, dependent: NormalizedName, *, index: Index, target: Target, store: Store
) -> Baseline | None:
    """The dependent release's contemporaneous stack when the index knows upload
    times, else the newest known-good combination holding it on this image."""
    contemporaneous = contemporaneous_for(here, dependent, index=index, target=target)
    known_good = [g.combo for g in store.known_good(target)]
    return choose_baseline(here, dependent, contemporaneous=contemporaneous, known_good=known_good)


def contemporaneous_for(
    here: Combo, dependent: NormalizedName, *, index: Index, target: Target
) -> Combo | None:
    """The dependent release with ``here``'s requested partners as they stood on
    its release day, when the index knows upload times."""
    version = here.versions.get(dependent)
    if version is None or not isinstance(index, DatedIndex):
        return None
    try:
        stack = contemporaneous_stack(
            index, target, dependent, version, partners_of(here, dependent)
        )
    except CompatError as exc:
        log.info("%s %s: no contemporaneous stack: %s", dependent, version, exc)
        return None
    return stack.outcome if isinstance(stack.outcome, Combo) else None


_RUN = "*run*"
"""The module name a combination's own whole run is cached under, beside the
per-module baseline outcomes (``deep_baselines``)."""


def _runner_digest() -> str:
    """The deep runner's code: another selection or runner decides other outcomes."""
    digest = hashlib.sha256()
    for path in sorted(DEEP_DIR.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _settings_key(config: RunConfig) -> str:
    """The deep tier's settings as its run key has always spelt them (a key that
    keeps its text keeps the runs cached under it); a module's time limit, settable
    later, counts only when it is not the default."""
    deep, timeouts = config.deep, config.timeouts
    module = timeouts.deep_module
    return (
        f"DeepSettings(max_modules={deep.max_modules!r}, "
        f"max_foundation_modules={deep.max_foundation_modules!r}, "
        f"timeout={timeouts.deep_run!r}, modules={deep.modules!r}, "
        f"keyword={deep.keyword!r}, test_timeout={timeouts.deep_test!r}"
        + (f", module_timeout={module!r})" if module != Timeouts().deep_module else ")")
    )


def run_key(here: Combo, *, image_id: str, test_layer: Combo, config: RunConfig) -> str:
    """What a combination's own deep run is cached under: its pins (file hashes
    included), the image, the test layer, the selection settings and the runner
    code, so a warm rerun of the same question costs no test run."""
    digest = hashlib.sha256(b"deep-run\n")
    for part in (here.id, image_id, test_layer.id, _settings_key(config), _runner_digest()):
        digest.update(part.encode() + b"\n")
    for pin in here.pins:
        digest.update(f"{pin.name}=={pin.version} {pin.sha256}\n".encode())
    return digest.hexdigest()[:24]


def _baseline_run(dependent: NormalizedName, cached: dict[str, list[dict[str, object]]]) -> DeepRun:
    outcomes = tuple(TestOutcome.from_json(o) for module in sorted(cached) for o in cached[module])
    return DeepRun(outcomes=tuple(o for o in outcomes if o.dependent == dependent), complete=True)


def unrequested_culprits(here: Combo, reports: Sequence[DeepReport]) -> tuple[str, ...]:
    """A note for each dependency that no one asked for but that regressions blame
    first (python-dateutil 4 under pandas 1.5.3): the resolver chose it, and a pin
    to the baseline's version tells it apart from the requested packages."""
    found = {
        first.name: first
        for r in reports
        for f in r.regressions
        if f.changed
        and (first := f.changed[0]).name not in here.requested
        and first.old is not None
    }
    return tuple(
        f"deep: the likeliest cause, {c}, was not requested (the resolver chose it); "
        f"to test the requested pins with the baseline's, add {c.name}=={c.old}"
        for c in found.values()
    )


def merge(result: ComboResult, reports: Sequence[DeepReport]) -> ComboResult:
    """``result`` with the deep checks added and its verdict, failed check and
    error re-derived from all checks (regressions can only make it worse)."""
    deep_checks: list[CheckResult] = [c for r in reports for c in check_results(r)]
    checks = (*result.checks, *deep_checks)
    # The counts travel with the verdict: what ran, and what was discarded.
    notes = (
        *result.notes,
        *(f"deep: {r.summary()}" for r in reports),
        *unrequested_culprits(result.combo, reports),
    )
    if not result.ok:
        return dataclasses.replace(result, checks=checks, notes=notes)
    verdict, culprit = overall(checks)
    if culprit is None or verdict is Verdict.PASS:
        return dataclasses.replace(result, checks=checks, notes=notes)
    return dataclasses.replace(
        result,
        checks=checks,
        notes=notes,
        verdict=verdict,
        failed_check=culprit.name,
        error=culprit.error,
        log=culprit.log,
    )


def ran_on(result: ComboResult, *, target: Target, store: Store) -> tuple[str, tuple[str, ...]]:
    """Where ``result``'s suite ran, for the runs that follow it (deep tests,
    baselines): the image's ID, and the system packages it had (the result's own
    and those the image is known to need)."""
    known = store.system_packages(target.image_id)
    packages = tuple(dict.fromkeys((*result.added_system_deps, *known)))
    return result.image_id or target.image_id or target.key, packages


def deepen(
    result: ComboResult,
    *,
    target: Target,
    pipeline: DeepRunner,
    store: Store,
    index: Index,
    reporter: Reporter,
    config: RunConfig = RunConfig(),
    test_layer: Combo | None = None,
) -> ComboResult:
    """Run the deep tier on a combination whose smoke suite passed or failed at
    run time (see :func:`deepens`); anything else is returned as it is.
    ``test_layer``: pytest and kin, resolved for the target when not given."""
    if not deepens(result):
        return result
    here = result.combo
    image_id, packages = ran_on(result, target=target, store=store)
    layer = test_layer or test_layer_for(index, target)
    key = run_key(here, image_id=image_id, test_layer=layer, config=config)
    cached_run = store.deep_baseline(key).get(_RUN)
    if cached_run:
        reporter.notice(f"deep: the shipped tests of {here.label()} ran before on this image")
        here_run = parse_events(json.dumps(e) for e in cached_run)
    else:
        reporter.notice(f"deep: running the shipped tests of {here.label()}")
        (mine,) = pipeline.run_deep(
            target,
            [
                DeepJob(
                    combo=here,
                    sdists=sdist_refs(index, here, here.requested),
                    max_modules=config.deep.max_modules,
                    max_foundation_modules=config.deep.max_foundation_modules,
                    modules=config.deep.modules,
                    keyword=config.deep.keyword,
                    test_timeout=config.timeouts.deep_test,
                    module_timeout=config.timeouts.deep_module,
                )
            ],
            layer,
            timeout=config.timeouts.deep_run,
            system_packages=packages,
            reporter=reporter,
        )
        if mine.error:
            failed = CheckResult(
                name="deep",
                kind=CheckKind.RUNNER,
                verdict=CheckVerdict.SKIPPED,
                duration=mine.duration,
                error=f"the deep tier did not finish: {mine.error}",
            )
            return dataclasses.replace(result, checks=(*result.checks, failed))
        here_run = parse_events(mine.events)
        if here_run.complete and not here_run.module_errors:
            # a module killed by a timeout may pass on a less busy machine: not kept
            store.record_deep_baseline(
                key=key,
                dependent="",
                version="",
                image_id=image_id,
                pins=[str(p) for p in here.pins],
                modules={_RUN: [json.loads(e) for e in mine.events if e.startswith("{")]},
            )

    # Baselines only for the modules that failed here: a test that passes here
    # needs no comparison, and a cached module is never run twice.
    baselines: dict[NormalizedName, Baseline | None] = {}
    cached: dict[NormalizedName, dict[str, list[dict[str, object]]]] = {}
    jobs: list[DeepJob] = []
    for dependent in here_run.plans:
        failing = sorted({t.module for t in needs_baseline(here_run, dependent)})
        if not failing:
            continue
        baseline = baseline_for(here, dependent, index=index, target=target, store=store)
        baselines[dependent] = baseline
        if baseline is None:
            continue
        cached[dependent] = store.deep_baseline(baseline.cache_key(image_id, layer))
        missing = tuple(m for m in failing if m not in cached[dependent])
        if missing:
            jobs.append(
                DeepJob(
                    combo=baseline.combo,
                    sdists=sdist_refs(index, baseline.combo, (dependent,)),
                    dependents=(dependent,),
                    modules=missing,
                    keyword=config.deep.keyword,
                    test_timeout=config.timeouts.deep_test,
                    module_timeout=config.timeouts.deep_module,
                )
            )
    if jobs:
        reporter.notice(f"deep: running {len(jobs)} baseline(s) for the tests that failed")
        for outcome in pipeline.run_deep(
            target,
            jobs,
            layer,
            timeout=config.timeouts.deep_run,
            system_packages=packages,
            reporter=reporter,
        ):
            (dependent,) = outcome.job.dependents
            baseline = baselines[dependent]
            if not outcome.events or baseline is None:
                continue
            run = parse_events(outcome.events)
            fresh: dict[str, list[dict[str, object]]] = {m: [] for m in outcome.job.modules}
            for test in run.of(dependent):
                fresh.setdefault(test.module, []).append(test.to_json())
            broken = set(run.module_errors)
            if outcome.error:
                broken |= set(fresh)  # an unfinished run is not a baseline to keep
            keep = {m: o for m, o in fresh.items() if m not in broken}
            store.record_deep_baseline(
                key=baseline.cache_key(image_id, layer),
                dependent=dependent,
                version=str(baseline.version),
                image_id=image_id,
                pins=[str(p) for p in baseline.combo.pins],
                modules=keep,
            )
            cached[dependent] = {**cached[dependent], **fresh}

    reports = [
        judge(
            dependent,
            here=here,
            here_run=here_run,
            baseline=baselines.get(dependent),
            baseline_run=_baseline_run(dependent, cached[dependent])
            if dependent in cached
            else None,
        )
        for dependent in sorted(here_run.plans)
    ]
    merged = merge(result, reports)
    for line in merged.notes[len(result.notes) :]:
        reporter.notice(line)
    return merged


def _sweep_key(baseline: Baseline, image_id: str) -> str:
    """What a baseline's whole-package import is cached under: the baseline and
    the code that imports and judges the modules."""
    digest = hashlib.sha256(b"import-sweep\n" + baseline.cache_key(image_id).encode())
    digest.update((SMOKE_DIR / "modules.py").read_bytes())
    return digest.hexdigest()[:24]


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
        key = _sweep_key(baseline, image_id)
        cached = store.deep_baseline(key).get(dependent)
        if cached is None:
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
            theirs = next((c for c in ran.checks if c.name == check.name), None)
            if theirs is None or (
                theirs.verdict is not CheckVerdict.PASS and not sweep_failed(theirs)
            ):
                notes.append(
                    f"import: the baseline of {dependent} did not import "
                    f"({ran.error or ran.verdict.value}): every module that failed counts"
                )
                continue
            cached = [{"module": m, "error": e} for m, e in failed_modules(theirs.log).items()]
            store.record_deep_baseline(
                key=key,
                dependent=dependent,
                version=str(baseline.version),
                image_id=image_id,
                pins=[str(p) for p in baseline.combo.pins],
                modules={dependent: cached},
            )
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


def deep_runner(pipeline: object) -> DeepRunner:
    """``pipeline`` as the deep tier needs it; a backend without it says so."""
    if not isinstance(pipeline, DeepRunner):
        raise UsageError(f"the {getattr(pipeline, 'kind', '?')} backend cannot run --depth deep")
    return pipeline


__all__ = [
    "DeepRunner",
    "Runner",
    "baseline_for",
    "deep_runner",
    "deepen",
    "deepens",
    "merge",
    "run_key",
    "test_layer_for",
]
