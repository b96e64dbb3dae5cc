"""Probe a base image for what it accepts: run its own Python once and ask
``packaging.tags`` (mounted from the host, read-only) for its wheel tags.

Cached by image ID: a second probe of the same image starts no container.
"""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path
from typing import Any

import packaging
from packaging.tags import parse_tag
from packaging.version import Version

from compat.effects.container import Container, ContainerSpec, Engine, Mount, connect, image_id
from compat.errors import HarnessError
from compat.targets.target import Libc, Target

log = logging.getLogger("compat.targets")

_MOUNT = "/opt/compat-probe"

# Runs inside the image with `python -I -S`: only the standard library and the
# mounted `packaging`, whose private libc helpers are what pip itself relies on.
PROBE_SCRIPT = f"""
import json, platform, shutil, sys
sys.path.insert(0, {_MOUNT!r})
from packaging import tags
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
manager = next((name for name, exe in managers if shutil.which(exe)), None)
print(json.dumps({{
    "python_version": platform.python_version(),
    "implementation": sys.implementation.name,
    "libc": libc,
    "libc_version": version,
    "machine": platform.machine(),
    "tags": [str(t) for t in tags.sys_tags()],
    "package_manager": manager,
}}))
"""


def _target(facts: dict[str, Any], *, name: str, image: str, image_id: str) -> Target:
    return Target(
        name=name,
        image=image,
        image_id=image_id,
        python_version=Version(facts["python_version"]),
        implementation=facts["implementation"],
        libc=Libc(facts["libc"]),
        libc_version=(int(facts["libc_version"][0]), int(facts["libc_version"][1])),
        machine=facts["machine"],
        # one tag per line as sys_tags() reported it: order is preference, keep it
        tags=tuple(next(iter(parse_tag(t))) for t in facts["tags"]),
        probed=True,
        package_manager=facts["package_manager"],
    )


def probe_image(image: str, *, name: str, cache_dir: Path, client: Engine | None = None) -> Target:
    """The Target ``image`` really is. ImageUnavailable when it is absent and cannot be
    pulled; EngineUnavailable when no engine answers."""
    if client is None:
        client = connect()
    iid = image_id(client, image)
    cached = cache_dir / "probes" / f"{iid.replace(':', '_')}.json"
    # A probe from before the package manager was asked for is done again.
    if cached.is_file() and '"package_manager"' in cached.read_text():
        try:
            return _target(json.loads(cached.read_text()), name=name, image=image, image_id=iid)
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a damaged probe cache file %s", cached)

    package_dir = Path(packaging.__file__).resolve().parent
    last: Exception | None = None
    output = ""
    for python in ("python3", "python"):
        spec = ContainerSpec(
            image=iid,
            command=(python, "-I", "-S", "-c", PROBE_SCRIPT),
            user="65534:65534",
            mounts=(Mount(source=package_dir, target=f"{_MOUNT}/packaging"),),
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
            line = next(ln for ln in reversed(result.stdout.splitlines()) if ln.startswith("{"))
            facts = json.loads(line)
            target = _target(facts, name=name, image=image, image_id=iid)
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_suffix(".tmp")
            tmp.write_text(json.dumps(facts, indent=1))
            tmp.replace(cached)
            return target
    raise HarnessError(
        f"cannot probe {image}: its Python did not run ({output or last}). "
        "The image needs python3 (or python) on its PATH."
    )
