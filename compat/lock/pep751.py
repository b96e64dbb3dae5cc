"""``pylock.toml`` (PEP 751), made with ``packaging.pylock`` and checked by reading
it back the way a consumer would."""

from __future__ import annotations

import tomllib

import tomli_w
from packaging.markers import Marker
from packaging.pylock import (
    Package,
    PackageSdist,
    PackageWheel,
    Pylock,
    PylockValidationError,
)
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from compat.errors import LockError
from compat.lock.input import LockInput
from compat.lock.requirements import header
from compat.model import FileKind, Pin

LOCK_VERSION = Version("1.0")
CREATED_BY = "compat"


def environment_marker(lock: LockInput) -> Marker:
    """The environments the lock is for. libc is not expressible as a marker: it is in
    the ``[tool.compat]`` table and in the wheels' own tags."""
    t = lock.target
    return Marker(
        f'sys_platform == "linux" and platform_machine == "{t.machine}" '
        f'and implementation_name == "{t.implementation}" and python_version == "{t.python}"'
    )


def _package(pin: Pin) -> Package:
    hashes = {"sha256": pin.sha256}
    if pin.kind is FileKind.SDIST:
        return Package(
            name=pin.name,
            version=pin.version,
            sdist=PackageSdist(name=pin.filename, url=pin.url, hashes=hashes),
        )
    return Package(
        name=pin.name,
        version=pin.version,
        wheels=[PackageWheel(name=pin.filename, url=pin.url, hashes=hashes)],
    )


def build_pylock(lock: LockInput) -> Pylock:
    t = lock.target
    tool: dict[str, object] = {
        "target": t.key,
        "image": t.image,
        "libc": f"{t.libc.value} {t.libc_version[0]}.{t.libc_version[1]}",
        "combination": lock.combo.id,
        "requested": list(lock.combo.requested),
        "system-packages": list(lock.system_packages),
        "source-builds": [str(p) for p in lock.source_builds],
    }
    if lock.matrix:
        tool["matrix"] = lock.matrix
    if lock.caps:
        tool["caps"] = [{"requirement": str(c), "reason": c.reason} for c in lock.caps]
    if t.image_id:
        tool["image-id"] = t.image_id
    if lock.package_manager:
        tool["package-manager"] = lock.package_manager
    return Pylock(
        lock_version=LOCK_VERSION,
        environments=[environment_marker(lock)],
        requires_python=SpecifierSet(f"=={t.python}.*"),
        created_by=CREATED_BY,
        packages=[_package(p) for p in lock.combo.pins],
        tool={"compat": tool},
    )


def render_pylock(lock: LockInput) -> str:
    """The TOML text, validated by parsing it back with ``Pylock.from_dict``."""
    pylock = build_pylock(lock)
    body = tomli_w.dumps(pylock.to_dict())
    try:
        again = Pylock.from_dict(tomllib.loads(body))
        again.validate()
    except (PylockValidationError, tomllib.TOMLDecodeError) as exc:  # a bug here, not input
        raise LockError(f"the pylock.toml compat made does not validate: {exc}") from exc
    if again != pylock:
        raise LockError("pylock.toml does not read back as written")
    return "".join(f"# {line}\n" for line in header(lock)) + "\n" + body
