"""The steps every workflow shares: choose the target and plan (running is the
session's: ``compat.workflows.session``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from compat.errors import PlanTooLarge, UsageError
from compat.harness.forecast import Kept, forecast, spread
from compat.harness.reuse import Keys, matching
from compat.harness.runner import Runner
from compat.matrix import Matrix
from compat.model import Combo
from compat.reporter import Reporter
from compat.resolve.candidates import PYTHON, CandidateSource
from compat.resolve.planner import Plan, Planner
from compat.store import Reader
from compat.targets.profiles import DEFAULT_BASE, host_target, target_from_profile
from compat.targets.target import Target


def choose_target(
    *,
    base: str | None,
    image: str | None,
    python: str | None,
    cache_dir: Path,
    reporter: Reporter,
    probe: bool = True,
    local: bool = False,
) -> Target:
    """The target to plan for: the host for the local backend; else the image (a
    profile's default image, or the one given) probed once, or, without ``probe``,
    the profile's derived tags (no Docker needed)."""
    if base and image:
        raise UsageError("give --base or --image, not both")
    if local:
        if base or image:
            ignored = f"--image {image}" if image else f"--base {base}"
            reporter.warning(f"local backend: ignoring {ignored}")
        return host_target()
    if not (image or probe):
        return target_from_profile(base or DEFAULT_BASE, python=python)
    from compat.targets.probe import probe_image  # needs Docker: imported when used

    ref = image or target_from_profile(base or DEFAULT_BASE, python=python).image
    return probe_image(ref, name=base or ref, cache_dir=cache_dir)


def target_of(
    pipeline: Runner,
    *,
    base: str | None,
    image: str | None,
    python: str | None,
    cache_dir: Path,
    reporter: Reporter,
) -> Target:
    """What ``pipeline`` really runs on (the host, for the local backend), said in one line."""
    target = choose_target(
        base=base,
        image=image,
        python=python,
        cache_dir=cache_dir,
        reporter=reporter,
        local=pipeline.kind == "local",
    )
    reporter.notice(f"target: {target.describe()}; backend: {pipeline.kind}")
    return target


def make_plan(
    source: CandidateSource,
    matrix: Matrix,
    *,
    strategy: str | None,
    last_minors: int | None,
    cap: int | None,
    reporter: Reporter,
    kept: Reader | None = None,
) -> Plan:
    """The matrix's combinations for the source's target, in the order that reuses
    most, with the check runs each is expected to execute (what ``kept`` has
    reused). The exhaustive strategy refuses a plan of more check runs than the
    cap."""
    reporter.plan_started(matrix.name, source.target.name)
    try:
        plan = Planner(source, matrix).plan(source.target, strategy, last_minors=last_minors)
        combos = spread(plan.combos)
        learned, kept_by = _learned(kept, source.target)
        expected = forecast(
            combos,
            requires=lambda name, version: [
                d.name for d in source.dependencies(name, version, frozenset()) if d.name != PYTHON
            ],
            learned=learned,
            kept=kept_by,
        )
    finally:
        reporter.plan_finished()
    limit = cap or matrix.cap
    if plan.strategy == "exhaustive" and expected.total > limit:
        raise PlanTooLarge(
            f"the exhaustive strategy would run about {expected.total} checks in "
            f"{len(combos)} combinations ({expected.reused} reused), above the cap of "
            f"{limit}: raise `cap` in {matrix.path}, narrow the ranges, use --last-minors, "
            "or use --strategy pairwise"
        )
    return dataclasses.replace(
        plan, combos=combos, check_runs=expected.runs, reused_runs=expected.reused
    )


def _learned(kept: Reader | None, target: Target) -> tuple[dict[str, frozenset[str]], Kept | None]:
    """What the results database tells a forecast: the inputs checks had on the
    target, and which checks it keeps outcomes of (on the image of its latest
    result)."""
    if kept is None:
        return {}, None
    image_id, learned = kept.learned_inputs(target.key)
    if image_id is None:
        return learned, None
    keys = Keys(checks_dir=None)

    def taken(combo: Combo) -> frozenset[str]:
        versions = combo.versions
        return frozenset(matching(kept, keys(image_id=image_id, installed=versions), versions))

    return learned, taken


__all__ = [
    "Runner",
    "choose_target",
    "make_plan",
    "target_of",
]
