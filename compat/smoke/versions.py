"""A tiny PEP 440 version and specifier evaluator, for the checks' validity ranges.

The runner has no ``packaging`` (it runs with the environment under test's own
Python and the standard library only), so this covers what the checks declare:
``>=``, ``>``, ``<``, ``<=``, ``==`` (with ``.*``), ``!=`` (with ``.*``) and
``~=``, comma-separated, all of which must hold.

Where it departs from packaging, on purpose, to answer "does this installed
release have the API the check was written for":

- A pre-release or dev release is judged as the release it previews for the
  ordering operators: ``2.0.0rc1`` satisfies ``>=2.0`` and not ``<2.0`` (it
  already has numpy 2's API). A specifier that names a pre-release itself
  (``>=2.0.0rc2``) compares exactly.
- A local label (``+cu121``) never matters, except to ``==`` naming one.

Runs inside the environment under test: standard library only, Python 3.9+.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["InvalidSpecifier", "InvalidVersion", "Version", "satisfies"]

_VERSION = re.compile(
    r"""
    ^\s*v?
    (?:(?P<epoch>\d+)!)?
    (?P<release>\d+(?:\.\d+)*)
    (?:[-_.]?(?P<pre_l>a|b|c|rc|alpha|beta|pre|preview)[-_.]?(?P<pre_n>\d+)?)?
    (?:-(?P<post_n1>\d+)|[-_.]?(?P<post_l>post|rev|r)[-_.]?(?P<post_n2>\d+)?)?
    (?:[-_.]?(?P<dev_l>dev)[-_.]?(?P<dev_n>\d+)?)?
    (?:\+(?P<local>[a-z0-9]+(?:[-_.][a-z0-9]+)*))?
    \s*$
    """,
    re.VERBOSE | re.IGNORECASE,
)
_PRE_LETTERS = {"a": "a", "alpha": "a", "b": "b", "beta": "b", "c": "rc", "rc": "rc"}
_PRE_LETTERS.update({"pre": "rc", "preview": "rc"})
_PRE_ORDER = {"a": 0, "b": 1, "rc": 2}
_OPERATORS = ("~=", "==", "!=", "<=", ">=", "<", ">")


class InvalidVersion(ValueError):
    pass


class InvalidSpecifier(ValueError):
    pass


@dataclass(frozen=True)
class Version:
    """A parsed version; ``key`` orders versions as PEP 440 does."""

    text: str
    epoch: int
    release: tuple[int, ...]
    pre: tuple[str, int] | None
    post: int | None
    dev: int | None
    local: str | None

    @classmethod
    def parse(cls, text: str) -> Version:
        match = _VERSION.match(text)
        if not match:
            raise InvalidVersion(f"not a version: {text!r}")
        pre = None
        if match.group("pre_l"):
            pre = (_PRE_LETTERS[match.group("pre_l").lower()], int(match.group("pre_n") or 0))
        post = None
        if match.group("post_n1") is not None:
            post = int(match.group("post_n1"))
        elif match.group("post_l"):
            post = int(match.group("post_n2") or 0)
        dev = int(match.group("dev_n") or 0) if match.group("dev_l") else None
        local = match.group("local")
        return cls(
            text=text.strip(),
            epoch=int(match.group("epoch") or 0),
            release=tuple(int(part) for part in match.group("release").split(".")),
            pre=pre,
            post=post,
            dev=dev,
            local=local.lower().replace("-", ".").replace("_", ".") if local else None,
        )

    @property
    def is_prerelease(self) -> bool:
        return self.pre is not None or self.dev is not None

    def key(self, *, width: int = 0) -> tuple[object, ...]:
        """The PEP 440 sort key (local labels ignored), release padded to ``width``."""
        release = self.release + (0,) * max(0, width - len(self.release))
        # A dev release of a final version sorts before its pre-releases.
        if self.pre is None and self.post is None and self.dev is not None:
            pre: tuple[int, int] = (-1, 0)
        elif self.pre is None:
            pre = (3, 0)
        else:
            pre = (_PRE_ORDER[self.pre[0]], self.pre[1])
        post = -1 if self.post is None else self.post
        dev = float("inf") if self.dev is None else self.dev
        return (self.epoch, release, pre, post, dev)

    def previewed(self) -> Version:
        """The final release a pre- or dev release previews (itself otherwise)."""
        if not self.is_prerelease:
            return self
        return Version(
            text=".".join(map(str, self.release)),
            epoch=self.epoch,
            release=self.release,
            pre=None,
            post=self.post if self.pre is None else None,
            dev=None,
            local=None,
        )

    def public(self) -> str:
        return self.text.split("+")[0]

    def __str__(self) -> str:
        return self.text


def _compare(have: Version, op: str, want: Version) -> bool:
    width = max(len(have.release), len(want.release))
    if not want.is_prerelease:
        have = have.previewed()
    a, b = have.key(width=width), want.key(width=width)
    if op == ">=":
        return a >= b
    if op == "<=":
        return a <= b
    if op == ">":
        return a > b
    if op == "<":
        return a < b
    raise InvalidSpecifier(op)


def _equal(have: Version, text: str) -> bool:
    if text.endswith(".*"):
        prefix = Version.parse(text[:-2])
        if prefix.epoch != have.epoch:
            return False
        if prefix.pre is None and prefix.post is None and prefix.dev is None:
            release = have.release + (0,) * max(0, len(prefix.release) - len(have.release))
            return release[: len(prefix.release)] == prefix.release
        return have.public().startswith(prefix.public())
    want = Version.parse(text)
    width = max(len(have.release), len(want.release))
    if have.key(width=width) != want.key(width=width):
        return False
    return want.local is None or want.local == have.local


def _one(have: Version, clause: str) -> bool:
    clause = clause.strip()
    op = next((o for o in _OPERATORS if clause.startswith(o)), None)
    if op is None:
        raise InvalidSpecifier(f"no operator in {clause!r} (use >=, <, ==, ~= ...)")
    operand = clause[len(op) :].strip()
    if not operand:
        raise InvalidSpecifier(f"no version in {clause!r}")
    if op == "==":
        return _equal(have, operand)
    if op == "!=":
        return not _equal(have, operand)
    if operand.endswith(".*"):
        raise InvalidSpecifier(f"{op} takes no wildcard: {clause!r}")
    want = Version.parse(operand)
    if op == "~=":
        if len(want.release) < 2:
            raise InvalidSpecifier(f"~= needs at least two release numbers: {clause!r}")
        prefix = ".".join(map(str, want.release[:-1]))
        epoch = f"{want.epoch}!" if want.epoch else ""
        return _compare(have, ">=", want) and _equal(have.previewed(), f"{epoch}{prefix}.*")
    return _compare(have, op, want)


def satisfies(version: str | Version, specifier: str) -> bool:
    """Whether ``version`` meets every comma-separated clause of ``specifier``
    (an empty specifier admits everything)."""
    have = version if isinstance(version, Version) else Version.parse(version)
    return all(_one(have, clause) for clause in specifier.split(",") if clause.strip())


def check_specifier(specifier: str) -> None:
    """Raise InvalidSpecifier unless ``specifier`` is well formed."""
    satisfies("0", specifier)
