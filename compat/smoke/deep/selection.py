"""Which shipped test modules of a dependent exercise a partner, read from what
each module imports (an AST scan; nothing is imported).

A test module exercises partner P when P is reached from it:

- through its own imports (anywhere in the file, ``pytest.importorskip("P")``
  and ``import_module("P")`` included), unless P is a *foundation* of the
  dependent (imported by ``import dependent`` itself, as numpy is by pandas):
  every test imports a foundation, so a direct import of one says nothing;
- through the dependent's library modules the test imports that ``import
  dependent`` does not load (``sklearn.linear_model``, ``pandas.plotting.
  _matplotlib``), followed transitively through what importing them loads
  (module-level imports; an import inside a function, as scipy.stats does
  matplotlib, is not followed: it would make nearly every test qualify);
- through test helpers of the same test tree (``pandas/tests/plotting/common.py``
  for ``pandas/tests/plotting/frame/test_frame.py``), for non-foundations only.

A module that names its partners only itself and only optionally (in a
module-level ``try:``, or inside functions) runs only the test functions that
use them (:func:`partner_tests`): scipy's stats tests import matplotlib for a
handful of plotting tests among thousands.
  Shared helpers (``pandas.util._test_decorators``, ``pandas._testing``) name
  every optional dependency and are not followed.

Runs inside the environment under test: standard library only, Python 3.9+.
"""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# Calls whose first string argument names a module the caller imports.
_IMPORTING_CALLS = frozenset(
    {
        "importorskip",
        "import_module",
        "__import__",
        "import_optional_dependency",
        "safe_import",
        "skip_if_no",
    }
)
_TEST_COMPONENTS = frozenset({"tests", "test", "testing", "_testing", "conftest"})


@dataclass(frozen=True)
class SourceModule:
    """One module of a dependent's package, as read from its file."""

    name: str  # dotted, e.g. pandas.tests.plotting.common
    path: str  # relative to the directory it was found under, with "/"
    imports: frozenset[str]  # absolute dotted names it imports, parents included
    # those imported when the module itself is imported (not inside a function):
    # what importing it really loads. None: not known, taken as all of ``imports``
    eager: frozenset[str] | None = None

    @property
    def loads(self) -> frozenset[str]:
        return self.imports if self.eager is None else self.eager


def is_test_code(module_name: str) -> bool:
    """A test module or a test helper: some component is ``tests``/``testing``/
    ``conftest`` or starts with ``test_``/``_test``."""
    return any(
        part in _TEST_COMPONENTS or part.startswith(("test_", "_test"))
        for part in module_name.split(".")
    )


def is_test_module(module_name: str) -> bool:
    """A module pytest collects: ``test_*.py`` or ``*_test.py`` in a test tree."""
    last = module_name.rsplit(".", 1)[-1]
    return is_test_code(module_name) and (last.startswith("test_") or last.endswith("_test"))


_STATEMENT = re.compile(r"^(?P<indent>[ \t]*)(?P<kw>import|from|if)\b(?P<rest>.*)$")
_CALL = re.compile(
    r"\b(?:" + "|".join(sorted(_IMPORTING_CALLS)) + r")\(\s*[\"'](?P<name>[A-Za-z_][\w.]*)[\"']"
)


def _with_parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def _resolve_relative(module_name: str, is_package: bool, level: int, target: str | None) -> str:
    base = module_name.split(".")
    if not is_package:
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, target] if target else base)


_DEF = re.compile(r"^[ \t]*(?:async[ \t]+)?def\b")


def _statements(source: str) -> list[tuple[str, bool]]:
    """The import statements of ``source`` as single dedented lines, each with
    whether it runs when the module is imported (False inside a function body),
    left out those under ``if TYPE_CHECKING:`` (never executed)."""
    found: list[tuple[str, bool]] = []
    lines = source.splitlines()
    skip_deeper: int | None = None
    in_def: int | None = None  # the indent of the def whose body we are in
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        match = _STATEMENT.match(line)
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            indent = len(line) - len(line.lstrip())
            if skip_deeper is not None and indent <= skip_deeper:
                skip_deeper = None
            if in_def is not None and indent <= in_def:
                in_def = None
            if in_def is None and _DEF.match(line):
                in_def = indent
                # a signature over several lines ends in "):" at the def's indent
                depth = line.count("(") - line.count(")")
                while depth > 0 and i < len(lines):
                    depth += lines[i].count("(") - lines[i].count(")")
                    i += 1
                continue
        if match is None or skip_deeper is not None:
            continue
        if match.group("kw") == "if":
            if "TYPE_CHECKING" in match.group("rest"):
                skip_deeper = len(match.group("indent"))
            continue
        statement = stripped.split("#", 1)[0].rstrip()
        # Parenthesised or continued lines: gather the rest of the statement.
        while (statement.count("(") > statement.count(")") or statement.endswith("\\")) and i < len(
            lines
        ):
            statement = statement.rstrip("\\") + " " + lines[i].split("#", 1)[0].strip()
            i += 1
        found.append((statement, in_def is None))
    return found


def scan_imports(
    source: str, module_name: str, *, is_package: bool = False
) -> tuple[frozenset[str], frozenset[str]]:
    """Every absolute module name ``source`` imports (as :func:`imports_of`), and
    those of them imported at module level, i.e. when the module is imported
    (calls like ``import_optional_dependency("x")`` count as lazy)."""
    found: set[str] = set()
    eager: set[str] = set()
    for statement, at_import in _statements(source):
        try:
            tree = ast.parse(statement)
        except SyntaxError:
            continue  # a line of a docstring or a string that looked like one
        names: set[str] = set()
        for node in tree.body:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    names.update(_with_parents(alias.name))
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = _resolve_relative(module_name, is_package, node.level, node.module)
                else:
                    base = node.module or ""
                if base:
                    names.update(_with_parents(base))
                    names.update(f"{base}.{a.name}" for a in node.names if a.name != "*")
        found |= names
        if at_import:
            eager |= names
    for match in _CALL.finditer(source):
        found.update(_with_parents(match.group("name")))
    return frozenset(found), frozenset(eager)


def imports_of(source: str, module_name: str, *, is_package: bool = False) -> frozenset[str]:
    """Every absolute module name ``source`` imports, at any depth of the file
    (imports under ``if TYPE_CHECKING:`` are not executed and do not count).
    ``from a import b`` yields ``a`` and ``a.b`` (b may be a submodule); each
    name comes with its parent packages. ``pytest.importorskip("x")`` and the
    like count as imports of ``x``.

    Import statements are found line by line and each is parsed with ``ast``:
    parsing whole files is the slow part (pandas ships 1,400 of them)."""
    return scan_imports(source, module_name, is_package=is_package)[0]


def index_package(root: Path, top: str) -> dict[str, SourceModule]:
    """Every ``.py`` module of package ``top`` found under ``root``, by name.
    Files that do not parse (Python 2 fixtures, templates) are left out."""
    index: dict[str, SourceModule] = {}
    base = root / top
    if not base.is_dir():
        return index
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for filename in sorted(filenames):
            if not filename.endswith(".py"):
                continue
            path = Path(dirpath) / filename
            rel = path.relative_to(root)
            parts = list(rel.with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts = parts[:-1]
            name = ".".join(parts)
            try:
                source = path.read_text(encoding="utf-8")
                imports, eager = scan_imports(source, name, is_package=is_package)
            except (SyntaxError, UnicodeDecodeError, ValueError, OSError):
                continue
            index[name] = SourceModule(name=name, path=rel.as_posix(), imports=imports, eager=eager)
    return index


def _top(name: str) -> str:
    return name.split(".", 1)[0]


def _same_test_tree(helper: str, test_module: str) -> bool:
    """``helper`` sits in the test module's package or one of its parents, below
    the top ``tests`` package (pandas.tests.plotting.common for pandas.tests.
    plotting.frame.test_frame; not pandas.tests.common)."""
    package = helper.rsplit(".", 1)[0]
    parts = test_module.split(".")
    if "tests" in parts:
        floor = parts.index("tests") + 2  # pandas.tests.<area> at least
    elif "testing" in parts:
        floor = parts.index("testing") + 2
    else:
        return False
    return len(package.split(".")) >= floor and test_module.startswith(package + ".")


@dataclass(frozen=True)
class Selection:
    """One selected test module and the partners it exercises."""

    module: SourceModule
    partners: tuple[str, ...]  # distribution names, sorted
    direct: tuple[str, ...] = ()  # those the module (or its own helpers) imports itself
    # partners it imports itself that the dependent's library modules it imports
    # call too: the test exercises the dependent's bridging code
    bridging: tuple[str, ...] = ()
    foundations_direct: tuple[str, ...] = ()  # foundations it imports itself
    own_only: bool = False  # its non-foundation partners come from its own imports only


def select_tests(
    index: Mapping[str, SourceModule],
    *,
    core: Iterable[str],
    partners: Mapping[str, Iterable[str]],
    foundations: Iterable[str] = (),
) -> list[Selection]:
    """The test modules of ``index`` that exercise any of ``partners``.

    ``core``: module names ``import dependent`` loads (they are reached by every
    test, so they say nothing). ``partners``: distribution name -> its top-level
    import names. ``foundations``: the partners ``import dependent`` loads.
    """
    core_set = frozenset(core)
    found_set = frozenset(foundations)
    owner_of = {top: dist for dist, tops in partners.items() for top in tops}

    def partner_hits(imports: Iterable[str]) -> set[str]:
        return {owner_of[_top(n)] for n in imports if _top(n) in owner_of}

    library_memo: dict[str, frozenset[str]] = {}

    def library_reach(start: str) -> frozenset[str]:
        """Partners reached through non-core library modules from ``start``."""
        if start in library_memo:
            return library_memo[start]
        seen: set[str] = set()
        hits: set[str] = set()
        todo = [start]
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            module = index.get(name)
            if module is None or name in core_set or is_test_code(name):
                continue
            # only what importing it loads: a library module importing a partner
            # inside one function (scipy.stats for matplotlib, sklearn.utils for
            # pandas) would otherwise make nearly every test "reach" that partner
            hits |= partner_hits(module.loads)
            todo.extend(n for n in module.loads if n in index)
        result = frozenset(hits)
        library_memo[start] = result
        return result

    selected: list[Selection] = []
    for name in sorted(index):
        if not is_test_module(name):
            continue
        module = index[name]
        direct = partner_hits(module.imports) - found_set
        helpers = [
            n for n in module.imports if n in index and n != name and _same_test_tree(n, name)
        ]
        for helper in helpers:
            direct |= partner_hits(index[helper].imports) - found_set
        own = list(module.imports) + [i for h in helpers for i in index[h].imports]
        reached: set[str] = set(direct)
        bridging: set[str] = set()
        via_library: set[str] = set()
        for imported in own:
            if imported in index and imported not in core_set and not is_test_code(imported):
                via_library |= library_reach(imported)
                # the dependent's code that calls a partner, lazily or not
                bridging |= partner_hits(index[imported].imports)
        reached |= via_library
        specific = reached - found_set
        itself = partner_hits(module.imports) - found_set
        if reached:
            selected.append(
                Selection(
                    module=module,
                    partners=tuple(sorted(reached)),
                    direct=tuple(sorted(direct)),
                    bridging=tuple(sorted(bridging & (direct | found_set))),
                    foundations_direct=tuple(sorted(partner_hits(own) & found_set)),
                    # only the module itself names them (no helper, no library code
                    # loads them): its tests that use them may be told apart
                    own_only=bool(specific)
                    and not (specific - itself)
                    and not (specific & (via_library | (direct - itself))),
                )
            )
    return selected


def candidates(
    index: Mapping[str, SourceModule],
    *,
    core: Iterable[str],
    partners: Mapping[str, Iterable[str]],
    foundations: Collection[str],
) -> list[Selection]:
    """The test modules of ``index`` worth running, most telling first: those that
    exercise a partner (``select_tests``); where every partner is a foundation,
    each test module calling one too (``foundation_tests``)."""
    chosen = select_tests(index, core=core, partners=partners, foundations=foundations)
    if not any(set(s.partners) - set(foundations) for s in chosen):
        have = {s.module.path for s in chosen}
        chosen += [
            s
            for s in foundation_tests(index, partners=partners, foundations=foundations)
            if s.module.path not in have
        ]
    return prioritise(chosen, foundations)


def foundation_tests(
    index: Mapping[str, SourceModule],
    *,
    partners: Mapping[str, Iterable[str]],
    foundations: Iterable[str],
) -> list[Selection]:
    """Every test module of ``index`` that imports a foundation itself (or through
    a helper of its test tree), as a selection of those foundations. For a
    dependent whose partners are all foundations its tests are all there is:
    wordcloud's one test module imports numpy, PIL and matplotlib besides
    wordcloud, whose code calls all three."""
    found_set = frozenset(foundations)
    owner_of = {top: dist for dist, tops in partners.items() for top in tops}
    chosen = []
    for name in sorted(index):
        if not is_test_module(name):
            continue
        module = index[name]
        helpers = [
            n for n in module.imports if n in index and n != name and _same_test_tree(n, name)
        ]
        own = [*module.imports, *(i for h in helpers for i in index[h].imports)]
        hits = sorted({owner_of[_top(n)] for n in own if _top(n) in owner_of} & found_set)
        if hits:
            chosen.append(
                Selection(module=module, partners=tuple(hits), foundations_direct=tuple(hits))
            )
    return chosen


def prioritise(selections: Iterable[Selection], foundations: Iterable[str]) -> list[Selection]:
    """Most telling first: modules that import a non-foundation partner
    themselves (pandas' plotting tests import matplotlib), those that also
    import the dependent's code calling it first; then those reaching one through
    library code; then, among those reaching only foundations, the ones
    importing more foundations themselves (scikit-learn's tests that import
    pandas and scipy); then by path (deterministic, for a module budget)."""
    found_set = frozenset(foundations)

    def key(sel: Selection) -> tuple[int, int, int, int, int, str]:
        specific = sum(1 for p in sel.partners if p not in found_set)
        return (
            -len(sel.direct),
            -len(sel.bridging),
            -specific,
            -len(sel.foundations_direct),
            -len(sel.partners),
            sel.module.path,
        )

    return sorted(selections, key=key)


def spread(selections: Sequence[Selection], budget: int) -> list[Selection]:
    """At most ``budget`` of ``selections``, taken in turn from each folder of
    test modules (statsmodels' ``tsa/tests``, ``regression/tests``, ...) in the
    order they first appear, each folder's in the given order."""
    folders: dict[str, list[Selection]] = {}
    for sel in selections:
        folders.setdefault(sel.module.path.rsplit("/", 1)[0], []).append(sel)
    chosen: list[Selection] = []
    queues = list(folders.values())
    while queues and len(chosen) < budget:
        for queue in queues:
            if queue and len(chosen) < budget:
                chosen.append(queue.pop(0))
        queues = [q for q in queues if q]
    return chosen


_UNIT = re.compile(r"^(?P<indent>[ \t]*)(?:async[ \t]+)?(?P<kw>def|class)[ \t]+(?P<name>\w+)")
_ASSIGNED = re.compile(r"^[ \t]*(?P<name>[A-Za-z_]\w*)[ \t]*(?::[^=]*)?=(?!=)")


def _partner_import(line: str, tops: Collection[str]) -> list[str] | None:
    """The names an import of a partner binds on this line, or None when the
    line imports no partner. ``pytest.importorskip("P")`` binds nothing here
    (its result is assigned: see the caller)."""
    text = line.strip()
    for match in _CALL.finditer(text):
        if _top(match.group("name")) in tops:
            assigned = _ASSIGNED.match(text)
            return [assigned.group("name")] if assigned else []
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return None
    bound: list[str] = []
    hit = False
    for node in tree.body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _top(alias.name) in tops:
                    hit = True
                    bound.append(alias.asname or _top(alias.name))
        elif (
            isinstance(node, ast.ImportFrom)
            and not node.level
            and node.module
            and _top(node.module) in tops
        ):
            hit = True
            bound += [a.asname or a.name for a in node.names if a.name != "*"]
    return bound if hit else None


def partner_tests(
    source: str, tops: Collection[str], *, fixtures: Collection[str] = ()
) -> tuple[str, ...] | None:
    """The test functions of a test module that use partners (by their
    top-level import names ``tops``) the module imports only optionally: inside
    a module-level ``try:`` (``have_matplotlib``) or inside functions, as
    scipy's stats and cluster tests do matplotlib. A test uses them when it (or
    a module-level helper that does, or its decorators) names what such an
    import binds (or one of ``fixtures``, conftest fixtures that import a
    partner), or imports one itself. None when the module imports a partner
    unconditionally at module level: any of its tests may use it."""
    lines = source.splitlines()
    units: dict[str, list[str]] = {}  # def name -> its decorator, signature and body lines
    current: str | None = None
    unit_indent = 0
    class_indent: int | None = None
    pending: list[str] = []
    in_try = False
    bound: set[str] = set(fixtures)
    users: set[str] = set()
    for line in lines:
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            if current is not None:
                units[current].append(line)
            continue
        indent = len(line) - len(line.lstrip())
        if current is not None and indent <= unit_indent and not stripped.startswith(")"):
            current = None
        if class_indent is not None and indent <= class_indent and not stripped.startswith(")"):
            class_indent = None
        if indent == 0:
            in_try = stripped.startswith("try:") or (
                in_try and stripped.startswith(("except", "else:", "finally:"))
            )
        unit = _UNIT.match(line) if current is None else None
        if unit is not None:
            if unit.group("kw") == "class" and indent == 0:
                class_indent = indent
                pending = []
                continue
            if unit.group("kw") == "def" and (
                indent == 0 or (class_indent is not None and indent > class_indent)
            ):
                current, unit_indent = unit.group("name"), indent
                units.setdefault(current, []).extend([*pending, line])
                pending = []
                continue
        if current is None and stripped.startswith("@"):
            pending.append(line)
            continue
        if current is not None:
            units[current].append(line)
        names = _partner_import(line, tops)
        if current is not None:
            if names is not None:
                users.add(current)
            continue
        if names is not None:
            if not in_try or indent == 0:
                return None  # imported whatever happens: every test may use it
            bound.update(names)
        elif in_try and indent > 0:
            assigned = _ASSIGNED.match(line)
            if assigned:
                bound.add(assigned.group("name"))  # have_matplotlib = True
    while True:
        pattern = re.compile(r"\b(?:" + "|".join(map(re.escape, sorted(bound))) + r")\b")
        grown = {
            name
            for name, body in units.items()
            if name not in users and bound and any(pattern.search(b) for b in body)
        }
        helpers = {n for n in grown | users if not n.startswith("test")} - bound
        users |= grown
        if not helpers:
            break
        bound |= helpers  # a helper or fixture that uses a partner: its callers do too
    return tuple(sorted(n for n in users if n.startswith("test")))


def partner_fixtures(source: str, tops: Collection[str]) -> tuple[str, ...]:
    """The functions of a conftest.py that import a partner (sklearn's ``pyplot``
    fixture): a test taking one as an argument uses the partner."""
    names: list[str] = []
    current: str | None = None
    for line in source.splitlines():
        unit = _UNIT.match(line)
        if unit is not None and unit.group("kw") == "def" and not unit.group("indent"):
            current = unit.group("name")
        elif line.strip() and not line[0].isspace() and not line.lstrip().startswith(("@", ")")):
            current = None
        if current is not None and _partner_import(line, tops) is not None:
            names.append(current)
    return tuple(dict.fromkeys(names))
