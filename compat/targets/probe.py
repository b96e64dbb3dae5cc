"""The one probe of an image (or of the host's interpreter): run its own Python once
and learn everything compat needs about it — the interpreter (path, version,
bytecode tag), libc and exact wheel tags (``packaging.tags``, mounted from the host
read-only), the package manager and the build toolchain.

Cached by image ID: a second probe of the same image, for planning or for running,
starts no container.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import packaging
from packaging.tags import Tag, parse_tag
from packaging.version import Version

from compat.effects import cmd
from compat.effects.container import Container, ContainerSpec, Engine, Mount, connect, image_id
from compat.errors import HarnessError
from compat.targets.target import Libc, PackageManager, Target

log = logging.getLogger("compat.targets")

_MOUNT = "/opt/compat-probe"  # where the host's `packaging` is mounted (its parent)
_PACKAGING = Path(packaging.__file__).resolve().parent
PROBE_USER = "65534:65534"  # nobody: the probe needs to write nothing

# Runs with `python -I -S -c SCRIPT DIR`, DIR holding `packaging`: only the standard
# library and packaging, whose private libc helpers are what pip itself relies on.
# Old Pythons too: no f-strings, no walrus.
PROBE_SCRIPT = r"""
import importlib.util, json, os, platform, shutil, sys, sysconfig
sys.path.insert(0, sys.argv[1])
from packaging import tags
def which(*names):
    for n in names:
        p = shutil.which(n)
        if p:
            return p
    return None
libc, version = None, None
try:
    from packaging import _musllinux
    musl = _musllinux._get_musl_version(sys.executable)
    if musl is not None:
        libc, version = "musl", [musl.major, musl.minor]
except Exception:
    pass
if libc is None:
    try:
        from packaging import _manylinux
        glibc = _manylinux._get_glibc_version()
        if glibc[0] > 0:
            libc, version = "glibc", list(glibc)
    except Exception:
        pass
if libc is None:
    name, ver = platform.libc_ver()
    parts = [int(p) for p in (ver or "0.0").split(".")[:2]] + [0, 0]
    libc, version = ("glibc" if name == "glibc" else "musl"), parts[:2]
managers = (("apk", "apk"), ("apt", "apt-get"), ("dnf", "dnf"), ("dnf", "microdnf"), ("dnf", "yum"))
manager = next((k for k, exe in managers if which(exe)), None)
include = sysconfig.get_paths().get("include") or ""
print(json.dumps({
    "python": sys.executable,
    "python_version": platform.python_version(),
    "implementation": sys.implementation.name,
    "cache_tag": sys.implementation.cache_tag,
    "magic": importlib.util.MAGIC_NUMBER.hex(),
    "libc": libc,
    "libc_version": version,
    "machine": platform.machine(),
    "tags": [str(t) for t in tags.sys_tags()],
    "package_manager": manager,
    "compiler": which("cc", "gcc", "clang"),
    "timeout_utility": which("timeout"),
    "has_python_headers": os.path.exists(os.path.join(include, "Python.h")),
}))
"""


@dataclass(frozen=True, kw_only=True, slots=True)
class ImageFacts:
    """What the probe learnt about one interpreter in one image."""

    python: str  # the interpreter's path inside the image
    python_version: Version
    implementation: str
    cache_tag: str  # with ``magic``: which bytecode it reads
    magic: str
    libc: Libc
    libc_version: tuple[int, int]
    machine: str
    tags: tuple[Tag, ...]  # in the interpreter's order of preference
    package_manager: PackageManager | None
    compiler: str | None
    timeout_utility: str | None  # coreutils/busybox `timeout`, to limit execs inside
    has_python_headers: bool

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ImageFacts:
        manager = data["package_manager"]  # required: older probes did not ask for it
        return cls(
            python=data.get("python") or "python3",
            python_version=Version(data["python_version"]),
            implementation=data["implementation"],
            cache_tag=data["cache_tag"],
            magic=data["magic"],
            libc=Libc(data["libc"]),
            libc_version=(int(data["libc_version"][0]), int(data["libc_version"][1])),
            machine=data["machine"],
            # one tag per line as sys_tags() reported it: order is preference, keep it
            tags=tuple(next(iter(parse_tag(t))) for t in data["tags"]),
            package_manager=PackageManager(manager) if manager else None,
            compiler=data.get("compiler"),
            timeout_utility=data.get("timeout_utility"),
            has_python_headers=bool(data.get("has_python_headers")),
        )

    def target(self, *, name: str, image: str, image_id: str | None) -> Target:
        return Target(
            name=name,
            image=image,
            image_id=image_id,
            python_version=self.python_version,
            implementation=self.implementation,
            libc=self.libc,
            libc_version=self.libc_version,
            machine=self.machine,
            tags=self.tags,
            probed=True,
            package_manager=self.package_manager,
        )


def _parse(output: str, what: str) -> tuple[ImageFacts, str]:
    """The facts in the probe's output (its last JSON line) and that line."""
    line = next((ln for ln in reversed(output.splitlines()) if ln.startswith("{")), "")
    try:
        return ImageFacts.from_json(json.loads(line)), line
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise HarnessError(f"cannot probe the Python of {what}: {output.strip()[-500:]}") from exc


def image_facts(client: Engine, iid: str, *, cache_dir: Path, what: str = "") -> ImageFacts:
    """The facts of the image ``iid`` (an image ID), from the cache in ``cache_dir``
    when it was probed before, else by running its Python once."""
    cached = cache_dir / "probes" / f"{iid.replace(':', '_')}.json"
    if cached.is_file():
        try:
            return _parse(cached.read_text(), iid)[0]
        except HarnessError:
            log.warning("ignoring a damaged probe cache file %s", cached)
    last: Exception | None = None
    output = ""
    for python in ("python3", "python"):
        spec = ContainerSpec(
            image=iid,
            command=(python, "-I", "-S", "-c", PROBE_SCRIPT, _MOUNT),
            user=PROBE_USER,
            mounts=(Mount(source=_PACKAGING, target=f"{_MOUNT}/packaging"),),
            tmpfs=("/tmp",),
        )
        try:
            with Container(client, spec, session=f"probe-{uuid.uuid4().hex[:8]}") as container:
                result = container.wait(timeout=120)
        except HarnessError as exc:  # no such executable in the image
            last = exc
            continue
        output = result.output_tail()
        if result.exit_code == 0:
            facts, line = _parse(result.stdout, what or iid)
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_suffix(f".{uuid.uuid4().hex[:8]}.tmp")
            tmp.write_text(line + "\n")
            tmp.replace(cached)
            return facts
    raise HarnessError(
        f"cannot probe {what or iid}: its Python did not run ({output or last}). "
        "The image needs python3 (or python) on its PATH."
    )


def probe_image(image: str, *, name: str, cache_dir: Path, client: Engine | None = None) -> Target:
    """The Target ``image`` really is. ImageUnavailable when it is absent and cannot be
    pulled; EngineUnavailable when no engine answers. ``cache_dir`` is compat's cache
    directory (the probes live in its ``probes/``)."""
    if client is None:
        client = connect()
    iid = image_id(client, image)
    return image_facts(client, iid, cache_dir=cache_dir, what=image).target(
        name=name, image=image, image_id=iid
    )


def host_facts(python: str) -> ImageFacts:
    """The facts of an interpreter of this machine (the local backend's)."""
    done = cmd.run([python, "-I", "-S", "-c", PROBE_SCRIPT, str(_PACKAGING.parent)], timeout=60)
    return _parse(done.stdout, f"the host's {python}")[0]
