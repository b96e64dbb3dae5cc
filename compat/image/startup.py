"""How fast a built image starts: the import time of its requested packages in a
fresh interpreter, with bytecode and without, and what the bytecode weighs.

Both ways are measured in the one image, in one container of it as its own user
with no network: Python reads bytecode from ``PYTHONPYCACHEPREFIX`` instead of the
``__pycache__`` folders when it is set: a prefix on a tmpfs holding the base's
bytecode alone shows the import without the image's, and one compiled from the
venv too shows it with bytecode for an image built ``--no-bytecode``. Each way is
timed twice after one untimed import (matplotlib's font cache, the shared libraries
read once), and the faster run kept: the difference is the compiling alone.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from compat.config import RunConfig
from compat.effects.container import Container, ContainerSpec, Engine, session_containers
from compat.errors import HarnessError

# run by the image's venv python: argv[1] the site-packages, argv[2] the requested
# distributions (JSON); prints one JSON object
_SCRIPT = r"""
import importlib.metadata, json, os, re, shutil, subprocess, sys, tempfile, time
site, wanted = sys.argv[1], json.loads(sys.argv[2])
canon = lambda name: re.sub(r"[-_.]+", "-", name).lower()
provided = {}
for module, dists in importlib.metadata.packages_distributions().items():
    if not module.startswith("_"):
        for dist in dists:
            provided.setdefault(canon(dist), []).append(module)
modules = []
for name in wanted:
    found = sorted(provided.get(canon(name), []))
    own = canon(name).replace("-", "_")
    if found:
        modules.append(own if own in found else found[0])
def weigh(root, pycache_only):
    total = 0
    for folder, _, files in os.walk(root):
        if folder.endswith("__pycache__") or not pycache_only:
            total += sum(os.path.getsize(os.path.join(folder, f)) for f in files)
    return total
in_image = weigh(site, True)
scratch = tempfile.mkdtemp()
prefix = os.path.join(scratch, "pyc")
mirrored = os.path.join(prefix, site.lstrip(os.sep))  # the venv's part of the prefix
base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": scratch, "TMPDIR": scratch,
        "MPLBACKEND": "Agg", "MPLCONFIGDIR": os.path.join(scratch, "mpl"),
        "PYTHONDONTWRITEBYTECODE": "1"}
code = "import " + ", ".join(modules)
def imported(prefix, write=False):
    env = dict(base, PYTHONPYCACHEPREFIX=prefix) if prefix else dict(base)
    if write:
        env.pop("PYTHONDONTWRITEBYTECODE")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=scratch,
                          capture_output=True, text=True)
    if done.returncode:
        last = (done.stderr.strip().splitlines() or ["exit %d" % done.returncode])[-1]
        raise SystemExit(json.dumps({"modules": modules, "error": last}))
    return time.perf_counter() - start
# the first import writes the bytecode of everything it imports into the prefix (the
# base's own modules too: a prefix hides their __pycache__ as well)
imported(prefix, write=True)
if in_image:
    shutil.rmtree(mirrored, ignore_errors=True)  # the prefix holds the base's alone
    ways = {"with": None, "without": prefix}
    size = in_image
else:
    subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0",
                    "--invalidation-mode", "unchecked-hash", site],
                   env=dict(base, PYTHONPYCACHEPREFIX=prefix, PYTHONDONTWRITEBYTECODE=""),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ways = {"with": prefix, "without": None}
    size = weigh(mirrored, False)
seconds = {way: min(imported(where), imported(where)) for way, where in ways.items()}
print(json.dumps({"modules": modules, "bytecode_in_image": bool(in_image),
                  "bytecode_size": size, "with": seconds["with"],
                  "without": seconds["without"], "error": None}))
"""


@dataclass(frozen=True, kw_only=True, slots=True)
class Startup:
    """The requested packages' import time in a fresh interpreter of the image, with
    and without bytecode, and the bytecode's size."""

    modules: tuple[str, ...]  # what was imported
    bytecode_in_image: bool  # the image ships bytecode (else built --no-bytecode)
    bytecode_size: int  # bytes: in the image, or what compiling it would add
    with_bytecode: float | None  # seconds; None when the import failed
    without_bytecode: float | None
    error: str | None = None  # the import's last error line

    def size_with(self, image_size: int) -> int:
        return image_size if self.bytecode_in_image else image_size + self.bytecode_size

    def size_without(self, image_size: int) -> int:
        return image_size - self.bytecode_size if self.bytecode_in_image else image_size

    def to_json(self) -> dict[str, Any]:
        return {
            "modules": list(self.modules),
            "bytecode_in_image": self.bytecode_in_image,
            "bytecode_size": self.bytecode_size,
            "with_bytecode": self.with_bytecode,
            "without_bytecode": self.without_bytecode,
            "error": self.error,
        }

    @classmethod
    def parse(cls, stdout: str) -> Startup:
        """What the script printed (its last line)."""
        lines = stdout.strip().splitlines()
        try:
            data = json.loads(lines[-1]) if lines else None
        except json.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            raise HarnessError(f"measuring the image's start-up printed no result: {stdout!r}")
        return cls(
            modules=tuple(data["modules"]),
            bytecode_in_image=bool(data.get("bytecode_in_image", False)),
            bytecode_size=int(data.get("bytecode_size") or 0),
            with_bytecode=data.get("with"),
            without_bytecode=data.get("without"),
            error=data.get("error"),
        )


def measure_startup(
    client: Engine,
    image: str,
    *,
    python: str,
    site: str,
    packages: Sequence[str],
    config: RunConfig = RunConfig(),
) -> Startup:
    """Import ``packages`` in fresh interpreters of ``image`` (a container of its own,
    removed afterwards), with bytecode and without, within the image's smoke limit."""
    session = f"image-startup-{uuid.uuid4().hex[:12]}"
    spec = ContainerSpec(
        image=image,
        command=(python, "-I", "-c", _SCRIPT, site, json.dumps(list(packages))),
        network=False,
        tmpfs=("/tmp",),
        environment={"TMPDIR": "/tmp"},
        mem_limit=config.memory,
        pids_limit=config.pids_limit,
    )
    with session_containers(client, session), Container(client, spec, session=session) as c:
        result = c.wait(timeout=config.timeouts.image_smoke)
    if result.timed_out:
        raise HarnessError(
            f"measuring the image's start-up took longer than "
            f"{config.timeouts.image_smoke:.0f}s (--smoke-timeout)"
        )
    return Startup.parse(result.stdout)


def describe(startup: Startup, image_size: int) -> list[str]:
    """Lines for ``compat image``: the import time and the image size both ways."""
    names = ", ".join(startup.modules)
    if startup.with_bytecode is None or startup.without_bytecode is None:
        return [f"importing {names} failed: {startup.error or 'no detail'}"]
    this = ("this image", "--no-bytecode") if startup.bytecode_in_image else ("", "this image")
    with_, without = (f" ({label})" if label else "" for label in this)
    mb = 1e6
    return [
        f"import of {names} in a fresh interpreter: {startup.with_bytecode:.1f} s with "
        f"bytecode{with_}, {startup.without_bytecode:.1f} s without{without}",
        f"image {startup.size_with(image_size) / mb:.1f} MB with bytecode, "
        f"{startup.size_without(image_size) / mb:.1f} MB without "
        f"(the bytecode: {startup.bytecode_size / mb:.1f} MB)",
    ]
