"""One scripted stand-in for the harness as the workflows use it (the protocols
``compat.harness.runner.Runner`` and ``compat.deep.running.DeepRunner``): a test says
what each combination's smoke run gives and what each deep job gives; every call
is remembered. A change to those protocols is one edit, here."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from compat.config import RunConfig
from compat.deep.running import DeepJob, DeepOutcome
from compat.harness.runner import Runner
from compat.index.base import Index
from compat.model import Combo, ComboResult, Verdict
from compat.reporter import Reporter
from compat.store import Store
from compat.targets.target import Target
from compat.workflows.session import Session

Smoke = Callable[[Target, Combo], ComboResult]
Deep = Callable[[DeepJob], DeepOutcome]


def passes(target: Target, combo: Combo) -> ComboResult:
    """A smoke run that passes, on the target's image."""
    return ComboResult(combo=combo, verdict=Verdict.PASS, image_id=target.image_id, backend="fake")


class ScriptedPipeline:
    """Runs each combination through ``smoke`` (delivering each result as the real
    pipeline does) and each deep job through ``deep``."""

    kind = "fake"

    def __init__(self, smoke: Smoke = passes, deep: Deep | None = None) -> None:
        self.smoke = smoke
        self.deep = deep
        self.ran: list[Combo] = []  # every combination that gave a result, in order
        self.system_packages: list[tuple[str, ...]] = []  # per run
        self.jobs: list[DeepJob] = []  # every deep job, in order
        self.deep_system_packages: list[tuple[str, ...]] = []  # per deep run
        self.test_layers: list[Combo] = []  # per deep run

    def run(
        self,
        target: Target,
        combos: Sequence[Combo],
        *,
        on_result: Callable[[ComboResult], None],
        reporter: Reporter,
        system_packages: Sequence[str] = (),
        kept: object = None,
    ) -> list[ComboResult]:
        self.system_packages.append(tuple(system_packages))
        results = []
        for combo in combos:
            result = self.smoke(target, combo)
            self.ran.append(combo)
            on_result(result)
            results.append(result)
        return results

    def run_deep(
        self,
        target: Target,
        jobs: Sequence[DeepJob],
        test_layer: Combo,
        *,
        timeout: float,
        system_packages: Sequence[str] = (),
        reporter: Reporter,
    ) -> list[DeepOutcome]:
        assert self.deep is not None, "this script has no deep tier"
        self.jobs += jobs
        self.test_layers.append(test_layer)
        self.deep_system_packages.append(tuple(system_packages))
        return [self.deep(job) for job in jobs]


def session_of(
    store: Store,
    pipeline: Runner,
    index: Index,
    *,
    reporter: Reporter | None = None,
    config: RunConfig | None = None,
    target: Target | None = None,
) -> Session:
    """A session over ``pipeline`` (a scripted one, or a real one over a fake
    backend), as the command line builds it."""
    return Session(
        pipeline=pipeline,
        store=store,
        index=index,
        reporter=reporter or Reporter(),
        config=config or RunConfig(),
        target=target,
    )
