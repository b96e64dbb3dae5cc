"""Matrix files: which packages, which version ranges, which bases, which strategy.

The format (TOML) is documented in the README. Every problem is reported with the
file, the key and what is wrong; nothing here touches the network (checking names
and ranges against the index happens when planning).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import InvalidName, NormalizedName, canonicalize_name

from compat.errors import MatrixError

STRATEGIES = ("latest", "minor", "pairwise", "exhaustive", "oldest")
# the check runs an exhaustive plan may execute (reused ones not counted)
DEFAULT_CAP = 20_000
_TOP_KEYS = {
    "name",
    "description",
    "bases",
    "python",
    "strategy",
    "last-minors",
    "cap",
    "build",
    "no-binary",
    "packages",
    "constraints",
    "as-of",
}
_PACKAGE_KEYS = {"versions", "extras", "build"}


@dataclass(frozen=True, kw_only=True, slots=True)
class MatrixPackage:
    name: NormalizedName
    versions: SpecifierSet
    extras: frozenset[NormalizedName] = frozenset()


@dataclass(frozen=True, kw_only=True, slots=True)
class BuildPolicy:
    """Which packages may be built from an sdist where no wheel fits the target."""

    allow_all: bool = True
    allowed: frozenset[NormalizedName] = frozenset()
    no_binary: frozenset[NormalizedName] = frozenset()  # always built from source

    def may_build(self, name: str) -> bool:
        name = canonicalize_name(name)
        return self.allow_all or name in self.allowed or name in self.no_binary

    def with_no_binary(self, names: frozenset[NormalizedName]) -> BuildPolicy:
        return BuildPolicy(
            allow_all=self.allow_all, allowed=self.allowed, no_binary=self.no_binary | names
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class Matrix:
    name: str
    path: str
    packages: tuple[MatrixPackage, ...]
    constraints: tuple[MatrixPackage, ...] = ()
    bases: tuple[str, ...] = ()
    python: str | None = None
    strategy: str = "pairwise"
    last_minors: int | None = None
    cap: int = DEFAULT_CAP  # check runs an exhaustive plan may execute
    build: BuildPolicy = BuildPolicy()
    description: str = ""
    as_of: date | None = None  # resolve as the index stood that day (UTC)

    @property
    def names(self) -> tuple[NormalizedName, ...]:
        return tuple(p.name for p in self.packages)


def load_matrix(path: Path) -> Matrix:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MatrixError(path, "", f"cannot read the matrix file: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise MatrixError(path, "", f"not UTF-8 text (byte {exc.start}): {exc.reason}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MatrixError(path, "", f"not valid TOML: {exc}") from None
    return parse_matrix(data, path=str(path))


def parse_matrix(data: dict[str, Any], *, path: str) -> Matrix:
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise MatrixError(path, unknown[0], f"unknown key (known: {', '.join(sorted(_TOP_KEYS))})")

    packages = _packages(data.get("packages"), path, "packages", required=True)
    constraints = _packages(data.get("constraints", {}), path, "constraints", required=False)

    strategy = _typed(data, "strategy", str, path, "pairwise")
    if strategy not in STRATEGIES:
        raise MatrixError(path, "strategy", f"{strategy!r} is not one of {', '.join(STRATEGIES)}")
    last_minors = _typed(data, "last-minors", int, path, None)
    if last_minors is not None and last_minors < 1:
        raise MatrixError(path, "last-minors", "must be at least 1")
    cap = _typed(data, "cap", int, path, DEFAULT_CAP)
    if cap < 1:
        raise MatrixError(path, "cap", "must be at least 1")
    bases = _typed(data, "bases", list, path, [])
    if not all(isinstance(b, str) and b for b in bases):
        raise MatrixError(path, "bases", "must be a list of base names or image references")
    python = _typed(data, "python", str, path, None)

    return Matrix(
        as_of=_as_of(data.get("as-of"), path),
        name=_typed(data, "name", str, path, Path(path).stem),
        description=_typed(data, "description", str, path, ""),
        path=path,
        packages=packages,
        constraints=constraints,
        bases=tuple(bases),
        python=python,
        strategy=strategy,
        last_minors=last_minors,
        cap=cap,
        build=_build_policy(data, packages, path),
    )


def _as_of(raw: Any, path: str) -> date | None:
    """A TOML date (``as-of = 2023-06-01``) or the same as a string."""
    if raw is None:
        return None
    if isinstance(raw, date) and not isinstance(raw, datetime):
        return raw
    if isinstance(raw, str) and len(raw) == 10:
        try:
            return date.fromisoformat(raw)
        except ValueError:
            pass
    raise MatrixError(path, "as-of", f"must be a date as YYYY-MM-DD, e.g. 2023-06-01, not {raw!r}")


def _typed(data: dict[str, Any], key: str, kind: type, path: str, default: Any) -> Any:
    value = data.get(key, default)
    if value is not default and not isinstance(value, kind):
        raise MatrixError(path, key, f"must be a {kind.__name__}, not {type(value).__name__}")
    return value


def _name(raw: str, path: str, key: str) -> NormalizedName:
    try:
        return canonicalize_name(raw, validate=True)
    except InvalidName:
        raise MatrixError(path, key, f"{raw!r} is not a valid package name") from None


def _specifier(raw: Any, path: str, key: str) -> SpecifierSet:
    if not isinstance(raw, str):
        raise MatrixError(path, key, "a version range must be a string such as '>=1.26,<3'")
    text = raw.strip()
    if text in ("", "*"):
        return SpecifierSet()
    try:
        return SpecifierSet(text)
    except InvalidSpecifier:
        raise MatrixError(
            path, key, f"{raw!r} is not a valid version specifier (PEP 440), e.g. '>=1.26,<3'"
        ) from None


def _packages(raw: Any, path: str, section: str, *, required: bool) -> tuple[MatrixPackage, ...]:
    if not isinstance(raw, dict) or (required and not raw):
        raise MatrixError(path, section, 'needs a table of packages, e.g. numpy = ">=1.26"')
    seen: dict[NormalizedName, str] = {}
    packages = []
    for raw_name, value in raw.items():
        key = f"{section}.{raw_name}"
        name = _name(raw_name, path, key)
        if name in seen:
            raise MatrixError(path, key, f"names the same package as {section}.{seen[name]}")
        seen[name] = raw_name
        extras: frozenset[NormalizedName] = frozenset()
        if isinstance(value, dict):
            unknown = sorted(set(value) - _PACKAGE_KEYS)
            if unknown:
                raise MatrixError(
                    path, f"{key}.{unknown[0]}", f"unknown key (known: {', '.join(_PACKAGE_KEYS)})"
                )
            versions = _specifier(value.get("versions", ""), path, f"{key}.versions")
            raw_extras = value.get("extras", [])
            if not isinstance(raw_extras, list) or not all(isinstance(e, str) for e in raw_extras):
                raise MatrixError(path, f"{key}.extras", "must be a list of extra names")
            extras = frozenset(_name(e, path, f"{key}.extras") for e in raw_extras)
        else:
            versions = _specifier(value, path, key)
        packages.append(MatrixPackage(name=name, versions=versions, extras=extras))
    return tuple(packages)


def _build_policy(
    data: dict[str, Any], packages: tuple[MatrixPackage, ...], path: str
) -> BuildPolicy:
    build = data.get("build", "missing")
    no_binary = frozenset(
        _name(n, path, "no-binary") for n in _typed(data, "no-binary", list, path, [])
    )
    if build == "missing":
        return BuildPolicy(allow_all=True, no_binary=no_binary)
    if build == "none":
        return BuildPolicy(allow_all=False, no_binary=no_binary)
    if isinstance(build, list) and all(isinstance(n, str) for n in build):
        return BuildPolicy(
            allow_all=False,
            allowed=frozenset(_name(n, path, "build") for n in build),
            no_binary=no_binary,
        )
    raise MatrixError(
        path,
        "build",
        '"missing" (build from source where no wheel fits), "none", or a list of package names',
    )


__all__ = [
    "STRATEGIES",
    "BuildPolicy",
    "Matrix",
    "MatrixPackage",
    "load_matrix",
    "parse_matrix",
]
