"""compat.harness.schedule.run_placed, the one way prepared items run: jobs at a
time, one more as each is delivered, counted, and an interruption that keeps what
finished."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from compat.effects.container import Executor
from compat.harness.schedule import Stage, run_placed
from tests.helpers.harness import FakeExecutor, exec_result


class _Where:
    """An executor context that counts how often it was entered and left."""

    def __init__(self) -> None:
        self.executor = FakeExecutor(lambda argv: exec_result(""))
        self.entered = 0
        self.left = 0

    @contextmanager
    def __call__(self) -> Iterator[Executor]:
        self.entered += 1
        try:
            yield self.executor
        finally:
            self.left += 1


def test_jobs_run_at_a_time_and_one_more_starts_as_each_is_delivered() -> None:
    where = _Where()
    lock = threading.Lock()
    started: list[int] = []
    delivered: list[int] = []
    ahead: list[int] = []  # at each start: how many started but not delivered

    def run(executor: Executor, item: int) -> int:
        with lock:
            ahead.append(len(started) - len(delivered))
            started.append(item)
        executor.exec(["run", str(item)])
        return item * 10

    progress: list[tuple[str, int, int]] = []
    run_placed(
        where(),
        [1, 2, 3, 4, 5],
        run,
        lambda n: delivered.append(n // 10),
        jobs=2,
        stage=Stage(name="run", total=7, before=2),
        progress=lambda *p: progress.append(p),
    )
    assert sorted(delivered) == [1, 2, 3, 4, 5]
    assert max(ahead) <= 1  # never a third beside two in flight
    assert progress == [("run", k, 7) for k in range(3, 8)]
    assert (where.entered, where.left) == (1, 1)
    assert len(where.executor.calls) == 5


def test_nothing_to_run_opens_no_executor() -> None:
    where = _Where()
    run_placed(
        where(),
        [],
        lambda executor, item: item,
        lambda item: None,
        jobs=2,
        stage=Stage(name="deep", total=0),
        progress=lambda *p: None,
    )
    assert where.entered == 0


def test_an_interruption_delivers_what_finished_and_starts_nothing_more() -> None:
    where = _Where()
    delivered: list[int] = []

    def run(executor: Executor, item: int) -> int:
        if item == 2:
            raise KeyboardInterrupt
        return item

    with pytest.raises(KeyboardInterrupt):
        run_placed(
            where(),
            [1, 2, 3, 4],
            run,
            delivered.append,
            jobs=1,
            stage=Stage(name="run", total=4),
            progress=lambda *p: None,
        )
    assert delivered == [1]
    assert where.left == 1  # the executor was left: runs in flight end with it
