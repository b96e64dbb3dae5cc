"""Built wheels on disk: the outcome of building one sdist for one image with one
toolchain, kept beside the wheelhouse, and the wheel a scan built last."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from compat.harness.wheelhouse import intact, stored_path

log = logging.getLogger("compat.harness")


@dataclass(frozen=True, kw_only=True, slots=True)
class BuildRecord:
    """The cached outcome of building one sdist for one image."""

    ok: bool
    duration: float
    wheel_sha256: str | None = None
    wheel_filename: str | None = None
    error: str | None = None
    log: str = ""  # the tail; the whole log is kept beside the record
    toolchain: str = ""  # toolchain_key(): what built it
    notes: tuple[str, ...] = ()  # what users of the wheel must know ("built without OpenMP")
    # neither is ever kept: a build out of time is undecided (a timeout), one whose
    # requirements the index or the network did not give is no verdict at all
    timed_out: bool = False
    unreachable: bool = False

    @property
    def transient(self) -> bool:
        """It says nothing about the package: not kept."""
        return self.timed_out or self.unreachable

    def to_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "duration": self.duration,
            "wheel_sha256": self.wheel_sha256,
            "wheel_filename": self.wheel_filename,
            "error": self.error,
            "log": self.log,
            "toolchain": self.toolchain,
            "notes": list(self.notes),
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> BuildRecord:
        return cls(
            ok=bool(data["ok"]),
            duration=float(str(data.get("duration", 0.0))),
            wheel_sha256=str(data["wheel_sha256"]) if data.get("wheel_sha256") else None,
            wheel_filename=str(data["wheel_filename"]) if data.get("wheel_filename") else None,
            error=str(data["error"]) if data.get("error") else None,
            log=str(data.get("log") or ""),
            toolchain=str(data.get("toolchain") or ""),
            notes=tuple(str(n) for n in data.get("notes") or ()),  # type: ignore[attr-defined]
        )


def build_record_path(cache_dir: Path, sdist_sha256: str, image: str, tool_key: str) -> Path:
    """Where the outcome of building one sdist for one image with one toolchain is kept
    (its whole log beside it, as .log)."""
    image_key = image.replace(":", "_").replace("/", "_")
    return cache_dir / "builds" / sdist_sha256 / f"{image_key}-{tool_key}.json"


def read_record(path: Path) -> BuildRecord | None:
    """The record kept at ``path``; None if there is none, and, with a one-line
    notice, if it does not parse (a damaged record is built again, never believed)."""
    try:
        return BuildRecord.from_json(json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        log.warning("ignoring a damaged build record %s: the sdist is built again", path)
        return None


def cached_build(path: Path, cache_dir: Path) -> BuildRecord | None:
    """The build outcome kept at ``path`` if it can be used: a failure, or a success
    whose wheel is in the wheelhouse under ``cache_dir`` and matches its hash. A
    wheel that is missing or damaged means building again (with a notice)."""
    record = read_record(path)
    if record is None or not record.ok:
        return record
    if record.wheel_sha256 and record.wheel_filename:
        wheel = stored_path(cache_dir, record.wheel_sha256, record.wheel_filename)
        if intact(wheel, record.wheel_sha256):
            return record
    log.warning("the wheel built for %s is missing or damaged: the sdist is built again", path)
    return None


def built_wheel(cache_dir: Path, sdist_sha256: str, image_id: str) -> Path | None:
    """The wheel a scan built last from this sdist on this image (any toolchain), if it
    is still in the wheelhouse: what was tested, ready to ship. The newest build wins:
    a changed toolchain builds again, and the older wheel is not what was tested last."""
    image_key = image_id.replace(":", "_").replace("/", "_")
    records = build_record_path(cache_dir, sdist_sha256, image_id, "*").parent
    for path in sorted(
        records.glob(f"{image_key}-*.json"), key=lambda p: p.stat().st_mtime, reverse=True
    ):
        record = read_record(path)
        if record is not None and record.ok and record.wheel_sha256 and record.wheel_filename:
            wheel = stored_path(cache_dir, record.wheel_sha256, record.wheel_filename)
            if intact(wheel, record.wheel_sha256):
                return wheel
    return None
