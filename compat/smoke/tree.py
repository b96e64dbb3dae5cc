"""The zygote tree: each built-in check runs in a forked child of a process whose
ancestors imported only what the check's needs require.

A zygote is a forked process that imports the modules of some distributions (a
needs-set), then runs each of its checks in a forked child of its own, then
forks its child zygotes, one at a time, waiting for each. The zygote for a
needs-set S hangs below the one for T only when every distribution of T is in S
or required by S's distributions (transitively, from installed metadata), and
below the one of those that has imported the most (by the import checks' times),
so that imports are shared: numpy, then scipy, then scikit-learn+scipy. The
root is the runner, which has imported none of them. Records go back to the
runner through one channel (:class:`isolate.Channel`): ``start``, ``result``,
and ``failed`` for a zygote whose imports failed or that died, which the runner's
:class:`Relay` turns into an outcome for every check of its subtree that got none.

Runs inside the environment under test: standard library only, Python 3.9+.
"""

from __future__ import annotations

import functools
import importlib
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

from . import dists, isolate
from .checks import Check


@dataclass
class Node:
    """One zygote: the distributions it needs imported (in import order), the
    checks it runs, and its child zygotes (in running order)."""

    dists: tuple[str, ...]
    checks: list[Any] = field(default_factory=list)  # checks.Check
    children: list[Node] = field(default_factory=list)

    @property
    def name(self) -> str:
        return "+".join(self.dists)

    def walk(self) -> Iterator[Node]:
        """This node and every node below it, in running order."""
        yield self
        for child in self.children:
            yield from child.walk()

    def subtree_checks(self) -> list[Any]:
        return [chk for node in self.walk() for chk in node.checks]


def plan(
    checks: Sequence[Any],
    order: Sequence[str],
    requires: Mapping[str, frozenset[str]],
    cost: Mapping[str, float],
) -> list[Node]:
    """The zygotes below the runner, in running order, for ``checks`` (each with
    ``needs``). ``order`` is the import order of the distributions, ``requires``
    each one's installed requirements (transitively), ``cost`` the seconds its
    import took."""
    position = {name: i for i, name in enumerate(order)}

    def ordered(names: frozenset[str]) -> tuple[str, ...]:
        return tuple(sorted(names, key=lambda n: (position.get(n, len(position)), n)))

    def reach(names: frozenset[str]) -> frozenset[str]:
        return names.union(*(requires.get(n, frozenset()) for n in names))

    def weight(names: frozenset[str]) -> tuple[float, int, int, tuple[str, ...]]:
        # what a zygote has imported: strictly ordered, so the tree has no cycle
        reached = reach(names)
        return (sum(cost.get(n, 0.0) for n in reached), len(reached), len(names), ordered(names))

    nodes: dict[frozenset[str], Node] = {}
    for chk in checks:
        needs = frozenset(chk.needs)
        nodes.setdefault(needs, Node(ordered(needs))).checks.append(chk)
    # A zygote of one distribution that several needs-sets share, when no
    # needs-set imports exactly what it would (scikit-learn below +pandas, +matplotlib).
    shared = Counter(name for needs in nodes for name in needs)
    for name, count in shared.items():
        single = frozenset({name})
        if count > 1 and single not in nodes and all(reach(n) != reach(single) for n in nodes):
            nodes[single] = Node((name,))

    roots: list[Node] = []
    for needs, node in nodes.items():
        below = reach(needs)
        parents = [t for t in nodes if t <= below and weight(t) < weight(needs)]
        if parents:
            nodes[max(parents, key=weight)].children.append(node)
        else:
            roots.append(node)
    roots = _pruned(roots)
    for node in roots:
        for each in node.walk():
            each.children.sort(key=lambda c: (len(c.dists), [position.get(n, 0) for n in c.dists]))
    roots.sort(key=lambda c: (len(c.dists), [position.get(n, 0) for n in c.dists]))
    return roots


def _pruned(nodes: list[Node]) -> list[Node]:
    """Without the added zygotes that run no check and share nothing: one with a
    single child (or none) hands it to its parent."""
    kept: list[Node] = []
    for node in nodes:
        node.children = _pruned(node.children)
        if node.checks or len(node.children) > 1:
            kept.append(node)
        else:
            kept.extend(node.children)
    return kept


def import_distribution(name: str) -> None:
    """The modules the import check of ``name`` imports (its top level, and the
    submodules that load its compiled code)."""
    for module in dists.modules_to_import(name, dists.find_distribution(name)):
        importlib.import_module(module)


@dataclass
class Zygotes:
    """Runs a tree of zygotes: every check through ``isolate.run_forked``, every
    record through ``channel``."""

    channel: isolate.Channel
    timeout: float
    inputs: Callable[[], dict[str, str]]

    def fork(
        self, node: Node, imported: frozenset[str], listen: isolate.Channel | None = None
    ) -> isolate.Outcome | None:
        """Run the zygote of ``node`` below a process that imported ``imported``;
        how it died, if it did."""
        with tempfile.TemporaryFile() as imports_log:
            outcome = isolate.run_forked(
                self._body(node, imported, imports_log),
                # the runner, listening, gives each record a time limit: the
                # zygotes below it have a budget of their whole subtree
                self.timeout + 10 if listen else self._budget(node),
                listen=listen,
            )
            if outcome.verdict == isolate.PASS:
                return None
            log = "\n".join(t for t in (isolate._read_log(imports_log), outcome.log) if t)
        error = f"{outcome.error} (the process importing {node.name} for its checks)"
        return isolate.Outcome(outcome.verdict, outcome.duration, error, log or None)

    def _budget(self, node: Node) -> float:
        nodes = list(node.walk())
        steps = sum(len(n.dists) + len(n.checks) for n in nodes)
        return self.timeout * (steps + 1) + 10

    def _body(self, node: Node, imported: frozenset[str], log: IO[bytes]) -> Callable[[], None]:
        def body() -> None:
            isolate.only_importing()
            self.channel.as_sender()
            for name in node.dists:
                if name in imported:
                    continue
                self.channel.send("importing", node=node.name, dist=name)
                outcome = isolate.run_inline(
                    functools.partial(import_distribution, name), self.timeout, log=log
                )
                if outcome.verdict != isolate.PASS:
                    error = f"{outcome.error} (importing {name} for {node.name})"
                    self.channel.send(
                        "failed",
                        node=node.name,
                        **isolate.Outcome(
                            outcome.verdict, outcome.duration, error, outcome.log
                        ).record(),
                    )
                    return
            log.seek(0)
            log.truncate()  # a later death is not the last import's
            report = Sender(self.channel)
            for chk in node.checks:
                report.start(chk.name)
                report.result(
                    chk.name, isolate.run_forked(chk.func, self.timeout, inputs=self.inputs)
                )
            below = imported | frozenset(node.dists)
            for child in node.children:
                failed = self.fork(child, below)
                if failed is not None:
                    self.channel.send("failed", node=child.name, **failed.record())

        return body


class Report(Protocol):
    """Where a check's events go: the event stream, or the runner through a channel."""

    def start(self, check: str) -> None: ...

    def result(self, check: str, outcome: isolate.Outcome) -> None: ...

    def reuse(self, check: str) -> None: ...


class Sender:
    """A forked process's events, as records to the runner (a :class:`Report`)."""

    def __init__(self, channel: isolate.Channel) -> None:
        self._channel = channel

    def start(self, check: str) -> None:
        self._channel.send("start", check=check)

    def result(self, check: str, outcome: isolate.Outcome) -> None:
        self._channel.send("result", check=check, **outcome.record())

    def reuse(self, check: str) -> None:
        self._channel.send("reuse", check=check)


class Relay:
    """Turns the records of the forked processes into events. A check's result
    is written once; a zygote that failed gives each check of its subtree that
    got no result the outcome saying so."""

    def __init__(self, events: Report, roots: Sequence[Node] = ()) -> None:
        self._events = events
        self._nodes = {node.name: node for root in roots for node in root.walk()}
        self._started: set[str] = set()
        self._finished: set[str] = set()
        self.in_flight: str | None = None  # a check started (or a plugin loading), no result yet

    def __call__(self, record: dict[str, Any]) -> None:
        kind = record.get("record")
        name = str(record.get("check"))
        if kind == "failed":
            node = self._nodes.get(str(record.get("node")))
            if node is not None:
                self.fail(
                    [c.name for c in node.subtree_checks()], isolate.Outcome.from_record(record)
                )
        elif kind == "loaded":
            self.in_flight = None
        elif name in self._finished:
            return  # from a process left over after its parent died
        elif kind == "loading":
            self.in_flight = name
        elif kind == "start":
            self.start(name)
            self.in_flight = name
        elif kind == "result":
            self.result(name, isolate.Outcome.from_record(record))
        elif kind == "reuse":
            self._finished.add(name)
            self._events.reuse(name)

    def start(self, name: str) -> None:
        self._started.add(name)
        self._events.start(name)

    def result(self, name: str, outcome: isolate.Outcome) -> None:
        self._finished.add(name)
        self.in_flight = None
        self._events.result(name, outcome)

    def fail(self, names: Iterable[str], outcome: isolate.Outcome) -> None:
        """The outcome of each of ``names`` that got none: ``outcome``, which says
        why (its inputs unknown)."""
        for name in names:
            if name in self._finished:
                continue
            if name not in self._started:
                self.start(name)
            self.result(name, isolate.Outcome(outcome.verdict, 0.0, outcome.error, outcome.log))


def run(
    checks: Sequence[Check],
    packages: Sequence[str],
    cost: Mapping[str, float],
    timeout: float,
    events: Report,
    inputs: Callable[[], dict[str, str]],
) -> None:
    """The built-in checks to run, each in a child of its zygote (see :mod:`.tree`);
    ``cost`` is the seconds each distribution's import took."""
    needed = {name for chk in checks for name in chk.needs}
    requires = {name: frozenset(dists.with_dependencies([name])) for name in needed}
    roots = plan(checks, packages, requires, cost)
    relay = Relay(events, roots)
    channel = isolate.Channel(relay)
    try:
        zygotes = Zygotes(channel, timeout, inputs)
        for root in roots:
            failed = zygotes.fork(root, frozenset(), listen=channel)
            if failed is not None:
                relay.fail([c.name for c in root.subtree_checks()], failed)
    finally:
        channel.close()
