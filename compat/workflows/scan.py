"""A scan, end to end: plan the matrix for a target, keep this shard's slice, skip
what this image already answered, run the rest inside a recorded run (each result
committed as it lands, so an interrupted scan keeps what it has), and return the
summary. The command line only presents the outcome."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import NormalizedName

from compat.errors import IncompatibleFound, UsageError
from compat.lock.select import Stack
from compat.matrix import Matrix
from compat.model import Combo, ComboResult, Depth, judged
from compat.report.junit import write_junit
from compat.report.summary import Row, pre_run_rows
from compat.resolve.candidates import CandidateSource
from compat.resolve.planner import Plan
from compat.store import ImageSize, ResultRow, Store
from compat.targets.target import Target
from compat.workflows.session import Session
from compat.workflows.steps import make_plan


@dataclass(frozen=True, kw_only=True, slots=True)
class Shard:
    """The K-th of N disjoint slices of a plan."""

    k: int = 1
    n: int = 1

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``K/N``, 1 <= K <= N."""
        try:
            k, n = (int(x) for x in text.split("/"))
        except ValueError:
            raise UsageError(f"--shard takes K/N, e.g. 1/4, not {text!r}") from None
        if not 1 <= k <= n:
            raise UsageError(f"--shard {text}: K must be between 1 and N")
        return cls(k=k, n=n)

    def select(self, combos: Sequence[Combo]) -> list[Combo]:
        """A deterministic, disjoint slice: by each combination's id, so a combination
        stays in its shard when the plan around it changes."""
        return [c for c in combos if int(c.id, 16) % self.n == self.k - 1]

    def __str__(self) -> str:
        return f"{self.k}/{self.n}"


def split_done(
    store: Store,
    combos: Sequence[Combo],
    target: Target,
    *,
    retest: bool,
    add_system_deps: bool,
    depth: Depth = Depth.SMOKE,
) -> tuple[list[Combo], list[ResultRow]]:
    """The combinations to run, and the latest results of those tested on this image
    before. With ``add_system_deps``, one that failed for a missing shared library
    runs again: this time the library will be added. One that passed at a lesser
    depth runs again (an imports-only pass does not answer a smoke scan, nor a
    smoke-depth pass a deep one)."""
    todo = store.filter_todo(combos, target.image_id, retest=retest)
    if target.image_id is None:
        return todo, []
    skipped = [c.id for c in combos if c not in todo]
    done = store.latest_results(skipped, target.image_id)
    if add_system_deps:
        for combo in combos:
            row = done.get(combo.id)
            stored = store.get(row.id) if row and not row.verdict.ok else None
            if stored and stored.result.system_deps and not stored.result.added_system_deps:
                del done[combo.id]
                todo.append(combo)
    if depth is not Depth.IMPORT:
        for combo in combos:
            row = done.get(combo.id)
            stored = store.get(row.id) if row and row.verdict.ok else None
            if stored is not None and not judged(stored.result, depth):
                del done[combo.id]
                todo.append(combo)
    return todo, list(done.values())


@dataclass(frozen=True, kw_only=True, slots=True)
class ScanRequest:
    """What to scan: the matrix and its planning knobs, the slice, the report."""

    matrix: Matrix
    matrix_path: str  # recorded with the run
    strategy: str | None = None
    last_minors: int | None = None
    cap: int | None = None
    no_binary: frozenset[NormalizedName] = frozenset()
    shard: Shard | None = None
    junit: Path | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class ScanOutcome:
    """A finished scan: the summary rows (known before running, from earlier runs,
    and from this one), the results that ran, and where they are stored."""

    title: str
    target: Target
    plan: Plan
    rows: tuple[Row, ...]
    results: tuple[ComboResult, ...]
    run_id: str
    store_url: str
    image_size: ImageSize | None  # the newest measured image of this matrix's lock
    matrix_path: str | None = None  # the matrix file, for the commands a summary suggests

    @property
    def failures(self) -> int:
        return sum(not r.verdict.ok for r in self.rows)

    def raise_for_status(self, *, fail_on_incompatible: bool) -> None:
        """The scan completed; with ``fail_on_incompatible`` (CI), a combination that
        does not pass is an error."""
        if fail_on_incompatible and self.failures:
            raise IncompatibleFound(f"{self.failures} of {len(self.rows)} combinations do not pass")


def scan(request: ScanRequest, session: Session) -> ScanOutcome:
    """Plan, slice, skip what is done, run and record; write JUnit XML if asked.
    The session's configuration says what reruns (``retest``, ``add_system_deps``,
    as the pipeline was told) and how deep."""
    target, store, reporter, config = session.where, session.store, session.reporter, session.config
    index, matrix = session.index, request.matrix
    source = CandidateSource(index, target, matrix.build.with_no_binary(request.no_binary))
    plan = make_plan(
        source,
        matrix,
        strategy=request.strategy,
        last_minors=request.last_minors,
        cap=request.cap,
        reporter=reporter,
        kept=store,
    )
    shard = request.shard or Shard()
    combos = shard.select(plan.combos)
    rows = pre_run_rows(plan) if shard.k == 1 else []  # said once, by the first shard
    if shard.n > 1:
        reporter.notice(f"shard {shard}: {len(combos)} of {len(plan.combos)} combinations")
    todo, done = split_done(
        store,
        combos,
        target,
        retest=config.retest,
        add_system_deps=config.add_system_deps,
        depth=config.depth,
    )
    if done:
        reporter.notice(
            f"{len(done)} combinations already tested on this image (--retest runs them)"
        )
    rows += [Row.of_stored(r) for r in done]
    with session.recording(
        matrix_name=matrix.name,
        matrix_path=request.matrix_path,
        strategy=plan.strategy,
        shard=str(request.shard) if request.shard else None,
    ) as run_id:
        try:
            results = list(session.run(todo, run_id).results)
        except KeyboardInterrupt:
            reporter.notice(f"interrupted: finished results are kept in {store.url}")
            raise
    rows += [Row.of(r) for r in results]
    outcome = ScanOutcome(
        title=f"{matrix.name} on {target.name} ({session.pipeline.kind})",
        target=target,
        plan=plan,
        rows=tuple(rows),
        results=tuple(results),
        run_id=run_id,
        store_url=store.url,
        image_size=stack_image_size(store, target, Stack.of(matrix)),
        matrix_path=request.matrix_path,
    )
    if request.junit is not None:
        write_junit(
            request.junit,
            suite=f"compat.{matrix.name}.{target.name}",
            rows=rows,
            results=results,
        )
    return outcome


def stack_image_size(store: Store, target: Target, stack: Stack) -> ImageSize | None:
    """The newest measured image of a lock of ``stack`` on the target's base (built
    from a known-good combination requesting exactly its packages), or None: the
    image of another matrix's lock on the same base is not this one's."""
    ours = {good.combo.id for good in store.known_good(target) if stack.holds(good.combo)}
    sizes = [s for s in store.image_sizes(base=target.name) if s.lock_hash in ours]
    return max(sizes, key=lambda s: s.measured) if sizes else None


__all__ = ["ScanOutcome", "ScanRequest", "Shard", "scan", "split_done", "stack_image_size"]
