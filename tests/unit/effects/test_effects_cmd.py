"""The door to subprocesses: output captured whole, or handed over line by line as
it comes; a time limit kills the whole process group."""

from __future__ import annotations

import sys
import time

from compat.effects import cmd

PRINTS_SLOWLY = (
    "import sys, time\n"
    "print('first', flush=True)\n"
    "print('to stderr', file=sys.stderr, flush=True)\n"
    "time.sleep(0.5)\n"
    "print('second', flush=True)\n"
)


def test_each_line_of_output_comes_before_the_command_ends() -> None:
    seen: list[tuple[str, float]] = []
    started = time.monotonic()
    done = cmd.run(
        [sys.executable, "-c", PRINTS_SLOWLY],
        on_line=lambda line: seen.append((line, time.monotonic() - started)),
    )
    assert [line for line, _ in seen] == ["first", "second"]
    first_at = seen[0][1]
    assert first_at < done.duration - 0.3  # before the sleep was over
    assert done.stdout == "first\nsecond\n"
    assert done.stderr == "to stderr\n"


def test_a_streamed_command_past_its_limit_is_killed_with_what_it_said() -> None:
    lines: list[str] = []
    done = cmd.run(
        [sys.executable, "-c", "import time; print('started', flush=True); time.sleep(30)"],
        timeout=1.0,
        check=False,
        on_line=lines.append,
    )
    assert done.timed_out
    assert done.returncode is None
    assert lines == ["started"]
    assert done.duration < 10
