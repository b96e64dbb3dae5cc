"""One explicit set of pins, the rest resolved, run and recorded: a declared
conflict is the verdict unless ``force`` installs the pins anyway."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from compat.errors import UsageError
from compat.index.base import Index
from compat.matrix import BuildPolicy
from compat.model import Combo, ComboResult
from compat.resolve.candidates import CandidateSource, Dependency
from compat.resolve.resolver import Conflict, Preferences, Resolver
from compat.targets.target import Target
from compat.workflows.session import Session


def _exact(specifier: SpecifierSet) -> Version | None:
    """The one version an ``==`` pin names (not a wildcard), else None."""
    exact = [s for s in specifier if s.operator in ("==", "===") and "*" not in s.version]
    return Version(exact[0].version) if exact else None


def _releases_exist(index: Index, reqs: Sequence[Requirement]) -> None:
    """A pin of a release the index does not have is a mistake on the command line,
    not a conflict between packages: said with the releases nearest to it."""
    for req in reqs:
        exact = _exact(req.specifier)
        if exact is None:
            continue
        versions = sorted({f.version for f in index.files(canonicalize_name(req.name))})
        if exact in versions:
            continue
        nearest = [v for v in versions if v < exact][-1:] + [v for v in versions if v > exact][:1]
        has = f"{versions[0]} to {versions[-1]}" if versions else "no releases"
        raise UsageError(
            f"{req.name} has no release {exact}: the index has {has}"
            + (f" (nearest: {', '.join(map(str, nearest))})" if nearest else "")
        )


def resolve_check(
    source: CandidateSource,
    reqs: Sequence[Requirement],
    *,
    force: bool,
    requested: Sequence[NormalizedName] | None = None,
) -> Combo | Conflict:
    """One explicit set of pins, the rest resolved. With ``force``, each exact pin is
    installed as given even where another package's metadata forbids it.
    ``requested`` names the packages asked for (default: every requirement's), the
    others only constrain."""
    _releases_exist(source.index, reqs)
    deps = [Dependency.of(r) for r in reqs]
    forced: dict[NormalizedName, Version] = {}
    if force:
        for dep in deps:
            exact = _exact(dep.specifier)
            if exact is None:
                raise UsageError(f"--force needs exact pins: {dep} is not one (use ==)")
            forced[dep.name] = exact
    return Resolver(source).resolve(deps, order=requested, prefs=Preferences(forced=forced))


def check(
    reqs: Sequence[Requirement],
    *,
    target: Target,
    index: Index,
    open_session: Callable[[], Session],
    build: BuildPolicy,
    force: bool,
    requested: Sequence[NormalizedName] | None = None,
) -> ComboResult | Conflict:
    """The result of running the pins on ``target`` in the session ``open_session``
    opens (as deep as its configuration says), or the conflict that kept them from
    resolving against ``index`` (then nothing runs and no session is opened, not
    even the results database)."""
    source = CandidateSource(index, target, build)
    resolved = resolve_check(source, reqs, force=force, requested=requested)
    if isinstance(resolved, Conflict):
        return resolved
    session = open_session().on(target)
    with session.recording() as run_id:
        (result,) = session.run([resolved], run_id).results
    return result


__all__ = ["check", "resolve_check"]
