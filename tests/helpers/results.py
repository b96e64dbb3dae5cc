"""Sample targets, combinations and results for tests of the results database and
what reads it, and raw looks into a database."""

from __future__ import annotations

import hashlib
from typing import Any

import sqlalchemy as sa
from packaging.specifiers import SpecifierSet
from packaging.tags import parse_tag
from packaging.utils import canonicalize_name
from packaging.version import Version

from compat.model import (
    CheckKind,
    CheckResult,
    CheckVerdict,
    Combo,
    ComboResult,
    FileKind,
    Pin,
    Verdict,
)
from compat.store import Store, schema
from compat.targets.target import Libc, Target

MUSL_ID = "sha256:" + "a" * 64
DEBIAN_ID = "sha256:" + "b" * 64


def make_target(
    name: str = "alpine", image: str = "local/musl-python:3.11", image_id: str | None = MUSL_ID
) -> Target:
    musl = "musl" in image
    platform = "musllinux_1_2_x86_64" if musl else "manylinux_2_36_x86_64"
    return Target(
        name=name,
        image=image,
        image_id=image_id,
        python_version=Version("3.11.9"),
        libc=Libc.MUSL if musl else Libc.GLIBC,
        libc_version=(1, 2) if musl else (2, 36),
        tags=(*parse_tag(f"cp311-cp311-{platform}"), *parse_tag(f"py3-none-{platform}")),
        probed=True,
    )


def make_combo(target: Target, versions: dict[str, str]) -> Combo:
    """The packages of ``versions`` are the requested ones, in that order; tzdata
    stands in for a transitive dependency."""
    pins = [
        Pin(
            name=canonicalize_name(name),
            version=Version(version),
            filename=f"{name.replace('-', '_')}-{version}-py3-none-any.whl",
            url=f"https://files.example/{name}-{version}.whl",
            sha256=hashlib.sha256(f"{name}=={version}".encode()).hexdigest(),
            kind=FileKind.SDIST if name == "lightgbm" else FileKind.WHEEL,
        )
        for name, version in [*versions.items(), ("tzdata", "2024.2")]
    ]
    return Combo(
        target=target.key,
        pins=tuple(sorted(pins, key=lambda p: p.name)),
        requested=tuple(canonicalize_name(n) for n in versions),
    )


def passed(target: Target, combo: Combo) -> ComboResult:
    return ComboResult(
        combo=combo,
        verdict=Verdict.PASS,
        checks=(
            CheckResult(
                name="numpy_core", verdict=CheckVerdict.PASS, duration=0.25, log="ok 12 tests\n"
            ),
            CheckResult(name="pandas_numpy", verdict=CheckVerdict.SKIPPED, duration=0.0),
        ),
        duration=3.5,
        backend="docker",
        image_id=target.image_id,
        log="installed 3 packages in 0.4 s\n",
    )


def failed(target: Target, combo: Combo, verdict: Verdict = Verdict.IMPORT_ERROR) -> ComboResult:
    error = "ImportError: libgomp.so.1: cannot open shared object file"
    return ComboResult(
        combo=combo,
        verdict=verdict,
        checks=(
            CheckResult(name="numpy_core", verdict=CheckVerdict.PASS, duration=0.5),
            CheckResult(
                name="lightgbm_core",
                verdict=CheckVerdict.IMPORT_ERROR,
                duration=0.125,
                error=error,
                log="Traceback (most recent call last):\n  ...\n" + error + "\n",
            ),
        ),
        error=error,
        failed_check="lightgbm_core",
        duration=7.25,
        system_deps=("libgomp",),
        added_system_deps=("libgomp",),
        backend="docker",
        image_id=target.image_id,
        log="naïve ünïcode and a long log\n" + "x" * 50_000,
    )


def deep_failed(target: Target, combo: Combo) -> ComboResult:
    """A failure the deep tier found: one of pandas' own tests fails."""
    regression = CheckResult(
        name="deep:pandas:pandas/tests/test_x.py::test_y",
        kind=CheckKind.DEEP,
        verdict=CheckVerdict.RUNTIME_ERROR,
        duration=1.0,
        error="AttributeError: gone",
    )
    return ComboResult(
        combo=combo,
        verdict=Verdict.RUNTIME_ERROR,
        checks=(regression,),
        error=regression.error,
        failed_check=regression.name,
        duration=60.0,
        backend="docker",
        image_id=target.image_id,
    )


def known_pair(
    store: Store,
    packages: dict[str, str],
    *,
    evidence: tuple[int, ...] = (1,),
    ranges: dict[str, SpecifierSet] | None = None,
) -> int:
    """Record ``packages`` as failing together on alpine (numpy's ABI break)."""
    return store.record_incompatibility(
        base="alpine",
        image_id=MUSL_ID,
        packages=packages,
        verdict=Verdict.IMPORT_ERROR,
        explanation="numpy.dtype size changed",
        evidence=evidence,
        ranges=ranges,
    )


def count(url: str, table: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())
    finally:
        engine.dispose()


def recorded_runs(url: str) -> list[Any]:
    """The rows of the runs table, most recently started first."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            query = sa.select(schema.runs).order_by(schema.runs.c.started.desc(), schema.runs.c.id)
            return list(conn.execute(query).all())
    finally:
        engine.dispose()
