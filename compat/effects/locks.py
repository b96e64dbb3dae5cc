"""Locks between processes that share a cache directory: two runs on one machine
(two shards, a scan and a nightly) unpack each wheel and build each sdist once, the
second waiting for the first and then using its work.

``flock`` locks belong to an open file, not to a process: two threads that open the
file each exclude each other as two processes do, and the kernel releases a lock
whose holder died (``kill -9``), so none is ever left stale.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if need be) while inside; waits
    for whoever holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
