"""One run's collaborators and settings, and the one way combinations are run.

A ``Session`` holds the pipeline, the results database, the index, the reporter,
the target and the resolved ``RunConfig``; the command line builds it once
(``compat.cli.options.open_session``). ``Session.run`` runs combinations end to
end: what the image is known to need installed first, the pipeline, failed imports
judged against their baselines, the deep tier at the configured depth, and every
result recorded; ``Session.deepen`` takes a stored result to depth deep and
records it. Every workflow (scan, check, nightly, bisect, lock's verification)
goes through them."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from compat.config import RunConfig
from compat.deep.imports import judge_imports
from compat.deep.running import deep_runner
from compat.deep.step import deepen, deepens
from compat.errors import DiskFull, EngineUnavailable, StoreError, out_of_space, with_more
from compat.harness.runner import Runner
from compat.index.base import Index
from compat.model import Combo, ComboResult, Depth, judged
from compat.reporter import Reporter
from compat.store import Store
from compat.sweep import wants_baseline
from compat.targets.target import Target


@dataclass(frozen=True, kw_only=True, slots=True)
class Ran:
    """What ``Session.run`` gives back: each combination's final result, in the
    order the pipeline returned them, and the id each was recorded under."""

    results: tuple[ComboResult, ...]
    ids: Mapping[str, int]  # combination id -> result id


@dataclass(frozen=True, kw_only=True, slots=True)
class Session:
    """Everything a run needs: where it runs (``pipeline``, ``target``), what it
    resolves against (``index``), where it records (``store``), whom it tells
    (``reporter``) and how (``config``). ``target`` is None until a workflow that
    picks its own (nightly, bisect, lock) puts the session ``on`` one."""

    pipeline: Runner
    store: Store
    index: Index
    reporter: Reporter
    config: RunConfig
    target: Target | None = None

    def on(self, target: Target) -> Session:
        """This session on ``target``."""
        return dataclasses.replace(self, target=target)

    def at(self, depth: Depth) -> Session:
        """This session testing to ``depth``."""
        return dataclasses.replace(self, config=dataclasses.replace(self.config, depth=depth))

    @property
    def where(self) -> Target:
        """The target (a session that has none yet is a bug of its workflow)."""
        assert self.target is not None, "put the session on a target first"
        return self.target

    @contextlib.contextmanager
    def recording(
        self,
        *,
        matrix_name: str | None = None,
        matrix_path: str | None = None,
        strategy: str | None = None,
        shard: str | None = None,
    ) -> Iterator[str]:
        """A recorded run on the target (its id for ``run``)."""
        with self.store.run(
            self.where,
            backend=self.pipeline.kind,
            matrix_name=matrix_name,
            matrix_path=matrix_path,
            strategy=strategy,
            shard=shard,
        ) as run_id:
            yield run_id

    def run(
        self,
        combos: Sequence[Combo],
        run_id: str,
        *,
        also_install: Sequence[str] = (),
        quiet: bool = False,
    ) -> Ran:
        """Run ``combos`` end to end in the recorded run ``run_id``. The pipeline
        installs what the image is known to need first (and ``also_install``); each
        result is recorded as soon as it lands (an interrupted run keeps what it
        has) and shown, unless it is held to be judged: failed imports judged
        against their baselines and, at depth deep, deepened, once every
        combination has run (they need containers of their own); those are
        recorded when judged. ``quiet``: one probe of a bisection, no progress
        shown and no summary of what was kept (the caller's)."""
        target = self.where
        if self.config.depth is Depth.DEEP:
            deep_runner(self.pipeline)  # a backend without the deep tier says so first
        shown = Reporter() if quiet else self.reporter
        final: dict[str, ComboResult] = {}
        ids: dict[str, int] = {}
        held: list[ComboResult] = []

        def keep(result: ComboResult) -> None:
            ids[result.combo.id] = self._record(run_id, result)
            final[result.combo.id] = result  # counted as kept once it is recorded
            shown.combo_finished(result)

        def landed(result: ComboResult) -> None:
            if self._holds(result):
                held.append(result)
            else:
                keep(result)

        packages = tuple(sorted({*self.store.system_packages(target.image_id), *also_install}))
        shown.run_started(len(combos))
        try:
            ran = self.pipeline.run(
                target,
                combos,
                on_result=landed,
                reporter=shown,
                system_packages=packages,
                kept=self.store,
            )
            for result in held:
                keep(self._judge(result))
        except (EngineUnavailable, DiskFull, StoreError, OSError) as exc:
            if quiet or (isinstance(exc, OSError) and not out_of_space(exc)):
                raise
            # a full disk wherever it was written (a build record, a cache entry)
            stop = DiskFull(Path(exc.filename or "."), exc) if isinstance(exc, OSError) else exc
            # the run is cut short, not lost: say what was kept, and where
            kept = f"the {len(final)} results that finished are kept in {self.store.url}"
            raise with_more(stop, f"{kept} (run {run_id})") from exc
        finally:
            shown.run_finished()
        return Ran(results=tuple(final.get(r.combo.id, r) for r in ran), ids=ids)

    def deepen(self, result: ComboResult) -> ComboResult:
        """``result`` (stored, passing) taken to depth deep on the target and
        recorded, so that a regression ends its known-good status."""
        deep = self.at(Depth.DEEP)
        deep_runner(deep.pipeline)
        deeper = deep._judge(result)
        with deep.recording(strategy="deep") as run_id:
            deep._record(run_id, deeper)
        return deeper

    def _record(self, run_id: str, result: ComboResult) -> int:
        """The one place a result is recorded: in the run ``run_id`` on the target."""
        return self.store.record(run_id, self.where, result)

    def _holds(self, result: ComboResult) -> bool:
        """Whether ``result`` is held to be judged (others are recorded as they land)."""
        return any(wants_baseline(c) for c in result.checks) or (
            self.config.depth is Depth.DEEP and deepens(result)
        )

    def _judge(self, result: ComboResult) -> ComboResult:
        """At every depth, failed imports judged against their baselines; at depth
        deep, then deepened."""
        result = judge_imports(
            result,
            target=self.where,
            pipeline=self.pipeline,
            store=self.store,
            index=self.index,
            reporter=self.reporter,
        )
        if self.config.depth is not Depth.DEEP:
            return result
        return deepen(
            result,
            target=self.where,
            pipeline=deep_runner(self.pipeline),
            store=self.store,
            index=self.index,
            reporter=self.reporter,
            config=self.config,
        )


def verifier(open_session: Callable[[], Session]) -> Callable[[Target, ComboResult], ComboResult]:
    """What lock and nightly use to confirm a known-good combination at depth deep
    before writing it: its stored passing result confirmed on its own target
    (``Session.deepen``), or the stored result itself when the deep tier already
    judged it. ``open_session`` is called once, when a pick first needs running: a
    pick judged before needs no engine."""
    open_once = functools.cache(open_session)

    def verify(target: Target, result: ComboResult) -> ComboResult:
        if judged(result, Depth.DEEP):
            return result
        return open_once().on(target).deepen(result)

    return verify


__all__ = ["Ran", "Session", "verifier"]
