"""Who a container runs as: never root.

Every container compat starts runs as an unprivileged user. Where a container writes
into a host directory (a builder's output and the PyPI toolchain, the bytecode of the
installs), it runs as the host's own user, so what it writes is that user's; when
compat itself runs as root, it runs as nobody instead, and the directories it writes
are lent to nobody for the container's lifetime: their directories are given to it
before, and everything under them is given back to root after. The PyPI toolchain's
directory, which only builders write, is nobody's for good.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from compat.errors import HarnessError

NOBODY = (65534, 65534)
NOBODY_USER = "65534:65534"


def user_string(ids: tuple[int, int]) -> str:
    return f"{ids[0]}:{ids[1]}"


def is_root(user: str) -> bool:
    """Whether the container user ``user`` ("uid[:gid]" or a name) is root."""
    name = user.split(":", 1)[0].strip()
    return name in ("", "0", "root")


def worker_ids(uid: int, gid: int) -> tuple[int, int]:
    """The user a container that writes host files runs as, for a host process running
    as ``uid:gid``: the same user, or nobody for root."""
    return (uid, gid) if uid != 0 else NOBODY


def host_worker() -> tuple[int, int]:
    return worker_ids(os.getuid(), os.getgid())


def _chown_tree(top: Path, ids: tuple[int, int], *, directories_only: bool) -> None:
    try:
        os.lchown(top, *ids)
        for root, dirs, files in os.walk(top):
            for name in dirs if directories_only else (*dirs, *files):
                os.lchown(Path(root, name), *ids)
    except OSError as exc:
        raise HarnessError(
            f"cannot give {top} to uid {ids[0]} for an unprivileged container: {exc}"
        ) from exc


@contextmanager
def lent(paths: Iterable[Path], ids: tuple[int, int]) -> Iterator[None]:
    """The directories ``paths`` writable by ``ids`` while the block runs. Only a root
    host process lends (another user's containers run as that user already); whatever
    the container made under them is the host's again afterwards."""
    host = (os.getuid(), os.getgid())
    if host[0] != 0 or host == ids:
        yield
        return
    tops = [p for p in paths if p.exists()]
    try:
        for top in tops:
            _chown_tree(top, ids, directories_only=True)
        yield
    finally:
        for top in tops:
            _chown_tree(top, host, directories_only=False)


def given(top: Path, ids: tuple[int, int]) -> None:
    """``top`` and everything under it owned by ``ids`` for good, when compat runs as
    root: a directory only unprivileged containers write (the PyPI toolchain), so that
    builds sharing it at once never take it from each other."""
    if os.getuid() == 0 and ids[0] != 0 and top.stat().st_uid != ids[0]:
        _chown_tree(top, ids, directories_only=False)


def readable(path: Path) -> None:
    """Let any user read ``path`` (and enter the directory it is in), for a container
    that reads it as another user: a builder reading its sdist from the wheelhouse."""
    try:
        path.chmod(path.stat().st_mode | 0o444)
        path.parent.chmod(path.parent.stat().st_mode | 0o555)
    except OSError as exc:
        raise HarnessError(f"cannot make {path} readable for a container: {exc}") from exc
