"""The one way prepared items run where the combinations run, whichever suite they
run: the smoke suite's passes, retries and reruns, the deep runner. A pool keeps
``jobs`` runs going, one more starts as each is delivered, progress counts them,
and an interruption delivers what finished and leaves the rest unrecorded."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TypeVar

from compat.effects.container import Executor

Item = TypeVar("Item")
Outcome = TypeVar("Outcome")

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True, kw_only=True, slots=True)
class Stage:
    """What progress counts items in: the stage's name, its total, and how many of
    that total were done before these items."""

    name: str
    total: int
    before: int = 0


def run_placed(
    executor: AbstractContextManager[Executor],
    items: Sequence[Item],
    run: Callable[[Executor, Item], Outcome],
    deliver: Callable[[Outcome], None],
    *,
    jobs: int,
    stage: Stage,
    progress: Progress,
) -> None:
    """``run`` each of ``items`` in ``executor`` (entered here only when there is
    something to run), ``jobs`` at a time, and ``deliver`` each outcome as it comes,
    counted as "k of N" of ``stage``.

    One more starts as each is delivered, not before: a combination reuses what
    those delivered before it ran (the store has them). Every outcome that finished
    is delivered before a failure of another run (Ctrl-C in it) is raised; runs in
    flight are then not waited for: leaving the executor's context removes their
    container, which ends them."""
    if not items:
        return
    waiting = deque(items)
    done = stage.before
    with executor as where:
        pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="compat")

        def start_next() -> set[Future[Outcome]]:
            return {pool.submit(run, where, waiting.popleft())} if waiting else set()

        try:
            futures: set[Future[Outcome]] = set()
            for _free in range(jobs):
                futures |= start_next()
            while futures:
                finished, futures = wait(futures, return_when=FIRST_COMPLETED)
                failures = []
                for future in finished:
                    if (failure := future.exception()) is not None:
                        failures.append(failure)
                        continue
                    deliver(future.result())
                    done += 1
                    progress(stage.name, done, stage.total)
                if failures:
                    raise failures[0]
                for _delivered in finished:
                    futures |= start_next()
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)


__all__ = ["Progress", "Stage", "run_placed"]
