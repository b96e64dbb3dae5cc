"""Fakes shared by the harness and workflow tests: a docker client that records what it is
asked, an executor that answers with canned runner output, a runtime without
containers, and a tiny wheel builder."""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import threading
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from packaging.tags import Tag
from packaging.utils import canonicalize_name
from packaging.version import Version

from compat.effects.container import ExecResult, Executor, OnLine
from compat.errors import BuildFailed
from compat.harness.backend import Backend, ImageInfo
from compat.model import CheckKind, Combo, FileKind, Pin
from compat.targets.probe import ImageFacts
from compat.targets.target import Libc, PackageManager, Target

# ---- runner output -----------------------------------------------------------------


def runner_stdout(*items: dict[str, Any]) -> str:
    return "\n".join(json.dumps(i) for i in items) + "\n"


def start_event(check: str) -> dict[str, Any]:
    return {"event": "start", "check": check, "kind": _kind(check)}


def result_event(
    check: str, verdict: str = "pass", error: str | None = None, log: str = ""
) -> dict[str, Any]:
    return {
        "event": "result",
        "check": check,
        "kind": _kind(check),
        "verdict": verdict,
        "duration": 0.25,
        "error": error,
        "log": log,
    }


def _kind(check: str) -> str:
    # the runner names its checks and gives their kinds alike: import:<dist>,
    # user:<file> and exec, else a built-in check
    return CheckKind.of_legacy_name(check).value


def done_event(**counts: int) -> dict[str, Any]:
    return {"event": "done", "counts": counts}


def passing_suite(*checks: str) -> str:
    items: list[dict[str, Any]] = []
    for c in checks:
        items += [start_event(c), result_event(c)]
    return runner_stdout(*items, done_event(**{"pass": len(checks)}))


# ---- wheels and combos -------------------------------------------------------------


def write_wheel(
    directory: Path, name: str, version: str, files: Mapping[str, str | bytes] | None = None
) -> Path:
    """A valid pure-Python wheel (with RECORD) holding ``files``."""
    dist = name.replace("-", "_")
    contents: dict[str, str | bytes] = dict(
        files or {f"{dist}/__init__.py": f"VERSION = {version!r}\n"}
    )
    info = f"{dist}-{version}.dist-info"
    contents[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    contents[f"{info}/WHEEL"] = (
        "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    record_lines = []
    for member, text in contents.items():
        data = text.encode() if isinstance(text, str) else text
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record_lines.append(f"{member},sha256={digest},{len(data)}")
    record_lines.append(f"{info}/RECORD,,")
    contents[f"{info}/RECORD"] = "\n".join(record_lines) + "\n"
    path = directory / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for member, body in contents.items():
            zf.writestr(member, body)
    return path


def elf_needing(*sonames: str) -> bytes:
    """A minimal 64-bit little-endian ELF shared object whose dynamic section names
    ``sonames`` (DT_NEEDED), as a compiled module linked against them does."""
    strings = b"\0" + b"".join(s.encode() + b"\0" for s in sonames)
    offsets = [1 + sum(len(s) + 1 for s in sonames[:i]) for i in range(len(sonames))]
    dynamic = b"".join(struct.pack("<qQ", 1, at) for at in offsets) + struct.pack("<qQ", 0, 0)
    strtab_at = 64
    dynamic_at = strtab_at + len(strings)
    sections_at = dynamic_at + len(dynamic)
    header = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    header += struct.pack("<HHIQQQIHHHHHH", 3, 62, 1, 0, 0, sections_at, 0, 64, 0, 0, 64, 3, 0)
    section = "<IIQQQQIIQQ"
    table = struct.pack(section, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)  # SHN_UNDEF
    table += struct.pack(section, 0, 3, 0, 0, strtab_at, len(strings), 0, 0, 1, 0)  # .dynstr
    table += struct.pack(section, 0, 6, 0, 0, dynamic_at, len(dynamic), 1, 0, 8, 16)  # .dynamic
    return header + strings + dynamic + table


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pin_for(path: Path, *, kind: FileKind = FileKind.WHEEL, url: str | None = None) -> Pin:
    name, version = path.name.split("-")[:2]
    if kind is FileKind.SDIST:
        version = version.removesuffix(".tar.gz")
    return Pin(
        name=canonicalize_name(name),
        version=Version(version),
        filename=path.name,
        url=url or f"https://files.example/{path.name}",
        sha256=sha256_of(path),
        kind=kind,
    )


def combo_of_pins(*pins: Pin, requested: Sequence[str] | None = None) -> Combo:
    ordered = tuple(sorted(pins, key=lambda p: p.name))
    wanted = requested if requested is not None else [p.name for p in ordered]
    return Combo(
        target="test|profile|py3.11",
        pins=ordered,
        requested=tuple(canonicalize_name(n) for n in wanted),
    )


def glibc_target() -> Target:
    return Target(
        name="test",
        image="local/test:1",
        python_version=Version("3.11.2"),
        libc=Libc.GLIBC,
        libc_version=(2, 36),
        tags=(Tag("py3", "none", "any"),),
    )


def image_info(**changes: Any) -> ImageInfo:
    """A Debian-like image with Python 3.11; ``changes`` set fields of the info or of
    its probe facts (``compiler=...``, ``package_manager=None``)."""
    facts: dict[str, Any] = {
        "python": "/usr/bin/python3",
        "python_version": Version("3.11.2"),
        "implementation": "cpython",
        "cache_tag": "cpython-311",
        "magic": "a70d0d0a",
        "libc": Libc.GLIBC,
        "libc_version": (2, 36),
        "machine": "x86_64",
        "tags": (Tag("py3", "none", "any"),),
        "package_manager": PackageManager.APT,
        "compiler": None,
        "timeout_utility": "/usr/bin/timeout",
        "has_python_headers": False,
    }
    info: dict[str, Any] = {"image": "sha256:base", "image_id": "sha256:base"}
    for key, value in changes.items():
        (facts if key in facts else info)[key] = value
    return ImageInfo(**info, facts=ImageFacts(**facts))


# ---- executor and runtime ----------------------------------------------------------

Answer = Callable[[list[str]], ExecResult]


def exec_result(stdout: str, *, code: int = 0, stderr: str = "") -> ExecResult:
    return ExecResult(exit_code=code, stdout=stdout, stderr=stderr, duration=0.5)


class FakeExecutor:
    """Answers each exec with ``answer(argv)`` and records every argv."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.calls: list[list[str]] = []
        self._lock = threading.Lock()

    def exec(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        on_line: OnLine | None = None,
    ) -> ExecResult:
        with self._lock:
            self.calls.append(list(argv))
        result = self.answer(list(argv))
        if on_line is not None:
            for line in result.stdout.splitlines():
                on_line(line)
        return result


def sites_of(argv: Sequence[str]) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == "--site"]


class FakeBackend(Backend):
    """A backend without containers: builds from a table, compiles nothing."""

    kind = "fake"

    def __init__(
        self,
        answer: Answer,
        *,
        info: ImageInfo | None = None,
        builds: Mapping[str, Path | str | BuildFailed] | None = None,  # sdist filename -> outcome
        derive: bool = True,
    ) -> None:
        self.info = info or image_info()
        self.executor_obj = FakeExecutor(answer)
        self.builds = dict(builds or {})
        self.derive = derive
        self.compiled: list[tuple[str, list[Path]]] = []
        self.built: list[str] = []
        self.derived: list[tuple[str, ...]] = []
        self.opened = 0
        self.closed = 0

    def inspect(self, target: Target) -> ImageInfo:
        return self.info

    def build_wheel(
        self, info: ImageInfo, pin: Pin, sdist: Path, out_dir: Path, *, requires: Path | None = None
    ) -> Path:
        self.built.append(pin.filename)
        outcome = self.builds.get(pin.filename, "no recipe")
        if isinstance(outcome, BuildFailed):
            raise outcome
        if isinstance(outcome, str):
            raise BuildFailed(pin, outcome, log="compiler says no", duration=1.5)
        copy = out_dir / outcome.name
        copy.write_bytes(outcome.read_bytes())
        return copy

    def compile(self, info: ImageInfo, dirs: Sequence[Path]) -> None:
        self.compiled.append((info.interpreter_key, list(dirs)))

    def site_dir(self, host_dir: Path) -> str:
        return f"/store/{host_dir.name}"

    def file_path(self, host_file: Path) -> str:
        return f"/files/{host_file.name}"

    def interpreter(self, info: ImageInfo) -> list[str]:
        return ["python3", "-I", "-S"]

    def smoke_dir(self, info: ImageInfo) -> str:
        # the image in the path: a test's answer can tell which image ran a suite
        return f"/opt/compat-smoke/{info.image}"

    def checks_dir(self) -> str | None:
        return None

    @contextmanager
    def executor(self, info: ImageInfo) -> Iterator[Executor]:
        self.opened += 1
        try:
            yield self.executor_obj
        finally:
            self.closed += 1

    def with_system_packages(self, info: ImageInfo, packages: Sequence[str]) -> ImageInfo | None:
        if not self.derive:
            return None
        self.derived.append(tuple(packages))
        return image_info(
            image="sha256:derived", image_id="sha256:derived", added_packages=tuple(packages)
        )


class Served:
    """Files on a fake index, by URL path."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[str] = []

    def add(self, path: Path, kind: FileKind = FileKind.WHEEL) -> Pin:
        self.files[f"/{path.name}"] = path.read_bytes()
        return pin_for(path, kind=kind)

    def client(self) -> httpx.Client:
        def handler(request: httpx.Request) -> httpx.Response:
            self.requests.append(request.url.path)
            body = self.files.get(request.url.path)
            return httpx.Response(200, content=body) if body is not None else httpx.Response(404)

        return httpx.Client(transport=httpx.MockTransport(handler))
