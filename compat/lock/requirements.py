"""``requirements.txt`` with a hash for every file: what ``pip install --require-hashes``
installs, and nothing else."""

from __future__ import annotations

from compat.harness.toolchain import Toolchain, build_notes
from compat.lock.input import LockInput
from compat.model import FileKind
from compat.text import one_line


def header(lock: LockInput) -> list[str]:
    """Comment lines naming what was locked, for every file compat writes: one line
    each, whatever the names and reasons they quote hold."""
    combo, target = lock.combo, lock.target
    lines = [
        f"Known-good pins found by compat for {target.describe()}",
        f"image: {target.image}" + (f" ({target.image_id})" if target.image_id else ""),
        f"target: {target.key}",
        f"combination: {combo.id} ({combo.label()})",
    ]
    if lock.matrix:
        lines.append(f"matrix: {lock.matrix}")
    if lock.system_packages:
        lines.append(f"system packages ({lock.package_manager}): {' '.join(lock.system_packages)}")
    lines += [f"capped: {cap} ({cap.reason})" for cap in lock.caps]
    if lock.source_builds:
        built = ", ".join(str(p) for p in lock.source_builds)
        lines.append(f"built from source: {built}")
        lines += list(lock_notes(lock))
    return [one_line(line) for line in lines]


def lock_notes(lock: LockInput) -> tuple[str, ...]:
    """What the lock's source builds mean for its users: a base with no package manager
    builds with the PyPI toolchain, which has no OpenMP."""
    toolchain = Toolchain.PYPI if lock.package_manager is None else Toolchain.DISTRO
    return build_notes([p.name for p in lock.source_builds], toolchain)


def render_requirements(lock: LockInput) -> str:
    """One ``name==version --hash=sha256:...`` line per pin, sorted by name.

    Each pin carries the hash of the one file the target uses, so pip can pick no
    other file: on the target it installs exactly what was tested."""
    lines = [f"# {line}" for line in header(lock)]
    lines += [
        "#",
        "# pip install --require-hashes --no-deps -r requirements.txt",
        "",
    ]
    for pin in lock.combo.pins:
        if pin.kind is FileKind.SDIST:
            lines.append(
                f"# {pin.name} {pin.version}: no wheel fits this target; "
                f"pip builds it from its source distribution {pin.filename}"
            )
        lines.append(f"{pin.name}=={pin.version} --hash=sha256:{pin.sha256}")
    return "\n".join(lines) + "\n"
