"""The deep tier as one step of a run: a combination that passed its smoke suite
(or failed it at run time) runs its dependents' shipped tests; the ones that fail
are run on each dependent's baseline (cached in the results database), and only
attributed regressions change the verdict."""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Mapping, Sequence
from typing import Any

from packaging.utils import NormalizedName

from compat.config import RunConfig
from compat.deep.baseline import Baseline, baseline_for
from compat.deep.differential import needs_baseline
from compat.deep.judging import judge, merge
from compat.deep.keys import baseline_run, module_context, module_inputs, pin_identity, run_key
from compat.deep.outcomes import DeepRun, Outcome, TestOutcome, parse_events
from compat.deep.running import DeepJob, DeepRunner, sdist_refs, test_layer_for
from compat.index.base import Index
from compat.model import CheckKind, CheckResult, CheckVerdict, Combo, ComboResult, Verdict
from compat.reporter import Reporter
from compat.store import Store
from compat.targets.target import Target

Cached = dict[str, list[dict[str, object]]]  # test module -> its tests' outcomes as JSON


def deepens(result: ComboResult) -> bool:
    """Whether the deep tier runs on ``result``: where the stack imports and runs.
    After a passing smoke suite it can find what the suite missed; after one that
    failed at run time it adds attributed evidence (which partner changed)."""
    return result.verdict in (Verdict.PASS, Verdict.RUNTIME_ERROR)


def ran_on(result: ComboResult, *, target: Target, store: Store) -> tuple[str, tuple[str, ...]]:
    """Where ``result``'s suite ran, for the runs that follow it (deep tests,
    baselines): the image's ID, and the system packages it had (the result's own
    and those the image is known to need)."""
    known = store.system_packages(target.image_id)
    packages = tuple(dict.fromkeys((*result.added_system_deps, *known)))
    return result.image_id or target.image_id or target.key, packages


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class _Where:
    """Where one combination's deep tier runs, and with what."""

    target: Target
    pipeline: DeepRunner
    store: Store
    index: Index
    reporter: Reporter
    config: RunConfig
    layer: Combo  # the test layer
    image_id: str
    packages: tuple[str, ...]  # the system packages its smoke suite ran with

    def job(
        self,
        combo: Combo,
        sdists_of: tuple[NormalizedName, ...],
        *,
        dependents: tuple[NormalizedName, ...] = (),
        modules: tuple[str, ...] | None = None,
    ) -> DeepJob:
        """A job over ``combo`` with the configured limits; ``modules``: those to run
        (else the configured selection)."""
        deep = self.config.deep
        selected = modules is None
        return DeepJob(
            combo=combo,
            sdists=sdist_refs(self.index, combo, sdists_of),
            dependents=dependents,
            modules=deep.modules if modules is None else modules,
            max_modules=deep.max_modules if selected else None,
            max_foundation_modules=deep.max_foundation_modules if selected else None,
            keyword=deep.keyword,
            test_timeout=self.config.timeouts.deep_test,
            module_timeout=self.config.timeouts.deep_module,
        )


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
    where = _Where(
        target=target,
        pipeline=pipeline,
        store=store,
        index=index,
        reporter=reporter,
        config=config,
        layer=test_layer or test_layer_for(index, target),
        image_id=image_id,
        packages=packages,
    )
    here_run, said = _own_run(where, here)
    if isinstance(here_run, CheckResult):
        return dataclasses.replace(result, checks=(*result.checks, here_run))
    baselines, cached = _baseline_runs(where, here, here_run)
    reports = [
        judge(
            dependent,
            here=here,
            here_run=here_run,
            baseline=baselines.get(dependent),
            baseline_run=baseline_run(dependent, cached[dependent])
            if dependent in cached
            else None,
        )
        for dependent in sorted(here_run.plans)
    ]
    merged = merge(result, reports)
    for line in merged.notes[len(result.notes) :]:
        reporter.notice(line)
    return dataclasses.replace(merged, notes=(*merged.notes, *said)) if said else merged


def _own_run(where: _Where, here: Combo) -> tuple[DeepRun | CheckResult, list[str]]:
    """The combination's own run of its dependents' tests: kept from an earlier run
    of the same question, else run (and kept when it finished cleanly); a run that
    did not finish is a skipped check saying why. With it, what the rerun of kept
    test modules (``--verify-reuse``) contradicted."""
    key = run_key(here, image_id=where.image_id, test_layer=where.layer, config=where.config)
    kept = where.store.deep_run(key)
    if kept:
        where.reporter.notice(f"deep: the shipped tests of {here.label()} ran before on this image")
        return parse_events(json.dumps(e) for e in kept), []
    context = module_context(
        here, image_id=where.image_id, test_layer=where.layer, config=where.config
    )
    kept_modules = _kept_modules(where.store.deep_modules(context), pin_identity(here))
    share = where.config.verify_reuse
    verify = {m for m in sorted(kept_modules) if share and random.random() < share}
    reused = {m: kept_modules[m][1] for m in kept_modules if m not in verify}
    also = f" ({len(reused)} test modules kept from runs that imported the same versions)"
    where.reporter.notice(
        f"deep: running the shipped tests of {here.label()}" + (also if reused else "")
    )
    job = dataclasses.replace(where.job(here, here.requested), reuse_modules=tuple(sorted(reused)))
    (mine,) = where.pipeline.run_deep(
        where.target,
        [job],
        where.layer,
        timeout=where.config.timeouts.deep_run,
        system_packages=where.packages,
        reporter=where.reporter,
    )
    if mine.error:
        skipped = CheckResult(
            name="deep",
            kind=CheckKind.RUNNER,
            verdict=CheckVerdict.SKIPPED,
            duration=mine.duration,
            error=f"the deep tier did not finish: {mine.error}",
        )
        return skipped, []
    events = _with_kept([json.loads(e) for e in mine.events if e.startswith("{")], reused)
    said = _verified(where, context, {m: kept_modules[m] for m in verify}, events)
    run = parse_events(json.dumps(e) for e in events)
    if run.complete:
        where.store.record_deep_modules(context=context, modules=_modules(here, events, run))
    if run.complete and not run.module_errors and not said:
        # a module killed by a timeout may pass on a less busy machine: not kept
        where.store.record_deep_run(
            key=key, image_id=where.image_id, pins=[str(p) for p in here.pins], events=events
        )
    return run, said


Event = dict[str, Any]


Kept = tuple[Mapping[str, str], list[Event]]  # a kept test module's inputs and events


def _kept_modules(
    rows: Sequence[tuple[str, Mapping[str, str], list[Event]]], pins: Mapping[str, str]
) -> dict[str, Kept]:
    """The kept test modules whose inputs ``pins`` hold, each with its inputs and
    events (the newest such run of it)."""
    found: dict[str, Kept] = {}
    for module, inputs, events in rows:
        if module not in found and inputs and all(pins.get(n) == v for n, v in inputs.items()):
            found[module] = (inputs, events)
    return found


def _failing(events: Sequence[Event], module: str) -> frozenset[str] | None:
    """The tests of ``module`` that fail in ``events``; None when one ran out of
    time (which says nothing either way)."""
    tests = [
        TestOutcome.from_json(e)
        for e in events
        if e.get("event") == "test" and e.get("module") == module
    ]
    if any(t.outcome is Outcome.TIMEOUT for t in tests):
        return None
    return frozenset(t.test for t in tests if t.outcome.failing)


def _verified(
    where: _Where, context: str, kept: Mapping[str, Kept], events: Sequence[Event]
) -> list[str]:
    """Compare the kept test modules that ran again with what they kept: each
    disagreement is recorded (the module is not reused under those inputs again)
    and said."""
    said = []
    for module, (inputs, before) in sorted(kept.items()):
        was, now = _failing(before, module), _failing(events, module)
        if was is None or now is None or was == now:
            continue
        kept_said, found_said = f"{len(was)} failing", f"{len(now)} failing"
        where.store.record_deep_disagreement(
            context=context, module=module, inputs=inputs, kept=kept_said, found=found_said
        )
        line = (
            f"reuse disagreement: deep test module {module} had {kept_said} tests with the "
            f"same inputs, and has {found_said} now; it is not reused under those inputs again"
        )
        where.reporter.warning(line)
        said.append(line)
    return said


def _with_kept(events: list[Event], kept: Mapping[str, list[Event]]) -> list[Event]:
    """The runner's events with the kept modules it did not run (it says ``reused``)
    in their place, before its end."""
    reused = {
        str(e.get("module"))
        for e in events
        if e.get("event") == "module" and e.get("reused") and e.get("module") in kept
    }
    added = [e for module in sorted(reused) for e in kept[module]]
    ran = [e for e in events if not (e.get("event") == "module" and e.get("reused"))]
    end = next((i for i, e in enumerate(ran) if e.get("event") == "done"), len(ran))
    return [*ran[:end], *added, *ran[end:]]


def _modules(
    here: Combo, events: list[Event], run: DeepRun
) -> list[tuple[str, str, dict[str, str], list[Event]]]:
    """The test modules of a finished run worth keeping by their inputs: each that
    said what it imported, finished, and had no test run out of time (a timeout is
    never reused)."""
    owners = run.owners()
    tests_of: dict[str, list[Event]] = {}
    for event in events:
        if event.get("event") == "test":
            tests_of.setdefault(str(event.get("module")), []).append(event)
    kept = []
    for done in events:
        module = str(done.get("module"))
        imports = done.get("imports")
        if done.get("event") != "module" or done.get("error") or not isinstance(imports, list):
            continue
        tests = tests_of.get(module, [])
        if any(t.get("outcome") == "timeout" for t in tests):
            continue
        inputs = module_inputs(here, [str(t) for t in imports], owners)
        kept.append((str(done.get("dependent")), module, inputs, [*tests, done]))
    return kept


def _baseline_runs(
    where: _Where, here: Combo, here_run: DeepRun
) -> tuple[dict[NormalizedName, Baseline | None], dict[NormalizedName, Cached]]:
    """Each dependent's baseline and its outcomes of the test modules that failed
    here: a test that passes here needs no comparison, and a cached module is never
    run twice."""
    store, layer, image_id = where.store, where.layer, where.image_id
    baselines: dict[NormalizedName, Baseline | None] = {}
    cached: dict[NormalizedName, Cached] = {}
    jobs: list[DeepJob] = []
    for dependent in here_run.plans:
        failing = sorted({t.module for t in needs_baseline(here_run, dependent)})
        if not failing:
            continue
        baseline = baseline_for(
            here, dependent, index=where.index, target=where.target, store=store
        )
        baselines[dependent] = baseline
        if baseline is None:
            continue
        cached[dependent] = store.deep_baseline(baseline.cache_key(image_id, layer))
        missing = tuple(m for m in failing if m not in cached[dependent])
        if missing:
            jobs.append(
                where.job(baseline.combo, (dependent,), dependents=(dependent,), modules=missing)
            )
    if not jobs:
        return baselines, cached
    where.reporter.notice(f"deep: running {len(jobs)} baseline(s) for the tests that failed")
    for outcome in where.pipeline.run_deep(
        where.target,
        jobs,
        layer,
        timeout=where.config.timeouts.deep_run,
        system_packages=where.packages,
        reporter=where.reporter,
    ):
        (dependent,) = outcome.job.dependents
        baseline = baselines[dependent]
        if not outcome.events or baseline is None:
            continue
        run = outcome.run
        fresh: Cached = {m: [] for m in outcome.job.modules}
        for test in run.of(dependent):
            fresh.setdefault(test.module, []).append(test.to_json())
        broken = set(run.module_errors)
        if outcome.error:
            broken |= set(fresh)  # an unfinished run is not a baseline to keep
        store.record_deep_baseline(
            key=baseline.cache_key(image_id, layer),
            dependent=dependent,
            version=str(baseline.version),
            image_id=image_id,
            pins=[str(p) for p in baseline.combo.pins],
            modules={m: o for m, o in fresh.items() if m not in broken},
        )
        cached[dependent] = {**cached[dependent], **fresh}
    return baselines, cached


__all__ = ["deepen", "deepens", "ran_on"]
