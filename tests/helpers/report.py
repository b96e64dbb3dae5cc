"""A sample scan for the report tests (three bases, failures of every kind, hostile
text), and just enough of a DOM to query the generated page."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser

from packaging.tags import Tag
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
from compat.report import BaseReport, LockStatus, ReportData
from compat.report.attribution import Finding, attribute
from compat.targets.target import Libc, Target

EVIL = "<script>alert('x')</script>"


def make_target(name: str, *, libc: Libc = Libc.GLIBC, python: str = "3.11.2") -> Target:
    return Target(
        name=name,
        image=f"local/{name}:latest",
        image_id=f"sha256:{hashlib.sha256(name.encode()).hexdigest()}",
        python_version=Version(python),
        libc=libc,
        libc_version=(2, 36) if libc is Libc.GLIBC else (1, 2),
        tags=(Tag("cp311", "cp311", "manylinux_2_17_x86_64"),),
        probed=True,
    )


def make_result(
    target: Target,
    versions: Mapping[str, str],
    verdict: Verdict = Verdict.PASS,
    *,
    error: str | None = None,
    log: str = "",
    extra: Mapping[str, str] | None = None,
    duration: float = 1.5,
    check: str = "import:numpy",
    system_deps: tuple[str, ...] = (),
) -> ComboResult:
    every = {**versions, **(extra or {})}
    pins = tuple(
        sorted(
            (
                Pin(
                    name=canonicalize_name(n),
                    version=Version(v),
                    filename=f"{n}-{v}-py3-none-any.whl",
                    url=f"https://files.example/{n}-{v}.whl",
                    sha256=hashlib.sha256(f"{n}{v}".encode()).hexdigest(),
                    kind=FileKind.WHEEL,
                )
                for n, v in every.items()
            ),
            key=lambda p: p.name,
        )
    )
    combo = Combo(
        target=target.key, pins=pins, requested=tuple(canonicalize_name(n) for n in versions)
    )
    failed = None if verdict.ok else check
    as_check = {
        Verdict.PASS: CheckVerdict.PASS,
        Verdict.CRASH: CheckVerdict.CRASH,
        Verdict.RUNTIME_ERROR: CheckVerdict.RUNTIME_ERROR,
        Verdict.TIMEOUT: CheckVerdict.TIMEOUT,
    }.get(verdict, CheckVerdict.IMPORT_ERROR)
    # the kind the runner gives a check so named (import:<dist>, or a built-in check)
    kind = CheckKind.of_legacy_name(check)
    checks = (CheckResult(name=check, kind=kind, verdict=as_check, duration=0.5, error=error),)
    return ComboResult(
        combo=combo,
        verdict=verdict,
        checks=checks,
        error=error,
        failed_check=failed,
        duration=duration,
        system_deps=system_deps,
        log=log or ("ok\n" if verdict.ok else f"Traceback (most recent call last):\n{error}\n"),
    )


ABI = "ValueError: numpy.dtype size changed, may indicate binary incompatibility"
GOMP = "OSError: libgomp.so.1: cannot open shared object file: No such file or directory"


def sample_results(target: Target) -> list[ComboResult]:
    """numpy x pandas x lightgbm on a glibc base: pandas 2.1.4 breaks under numpy 2,
    lightgbm 4.5.0 lacks libgomp, one error line is hostile HTML."""
    out = []
    for np_ in ("1.26.4", "2.0.2"):
        for pd in ("2.1.4", "2.2.3"):
            for lgb in ("4.3.0", "4.5.0"):
                versions = {"numpy": np_, "pandas": pd, "lightgbm": lgb}
                extra = {"python-dateutil": "2.9.0.post0", "six": "1.16.0"}
                if np_.startswith("2") and pd == "2.1.4":
                    out.append(
                        make_result(
                            target,
                            versions,
                            Verdict.IMPORT_ERROR,
                            error=ABI,
                            extra=extra,
                            check="import:pandas",
                        )
                    )
                elif lgb == "4.5.0":
                    out.append(
                        make_result(
                            target,
                            versions,
                            Verdict.IMPORT_ERROR,
                            error=GOMP,
                            extra=extra,
                            check="import:lightgbm",
                            system_deps=("libgomp1",),
                        )
                    )
                else:
                    out.append(make_result(target, versions, extra=extra))
    # Only numpy 2.1.3 with pandas 2.2.3 tried: lightgbm 4.3.0 crashes there.
    out.append(
        make_result(
            target,
            {"numpy": "2.1.3", "pandas": "2.2.3", "lightgbm": "4.3.0"},
            Verdict.CRASH,
            check="lightgbm+numpy:native-train",
            error=f"SIGSEGV in {EVIL} & friends",
            log=f"line one\n{EVIL}\n</pre></details><b>not bold</b>\n",
        )
    )
    return out


def sample_report() -> ReportData:
    bookworm = make_target("bookworm")
    musl = make_target("musl", libc=Libc.MUSL)
    trixie = make_target("trixie", python="3.13.5")
    bookworm_results = sample_results(bookworm)
    good = bookworm_results[0].combo
    musl_results = [
        make_result(musl, {"numpy": "2.0.2", "pandas": "2.2.3"}),
        make_result(
            musl,
            {"numpy": "1.26.4", "pandas": "2.2.3"},
            Verdict.CRASH,
            error="signal 11 (SIGSEGV): DT_RELR needs musl >= 1.2.4",
        ),
    ]
    return ReportData(
        title="ML stack compatibility",
        bases=(
            BaseReport.from_results(
                bookworm,
                bookworm_results,
                image_size=605_123_456,
                added_size=482_000_000,
                lockfile="numpy==1.26.4 \\\n    --hash=sha256:abc\npandas==2.2.3\n",
                lock=LockStatus(
                    combo_id=good.id,
                    requested=tuple((n, good.version_of(n)) for n in good.requested),
                    pins=tuple((p.name, p.version) for p in good.pins),
                    verified=datetime(2026, 11, 30, 22, 5, tzinfo=UTC),
                ),
                findings=(
                    Finding(
                        packages=(
                            (canonicalize_name("numpy"), Version("2.0.2")),
                            (canonicalize_name("pandas"), Version("2.1.4")),
                        ),
                        line=f"pandas 2.1.4 with numpy >= 2 {EVIL}",
                    ),
                ),
            ),
            BaseReport.from_results(
                musl, musl_results, image_size=402_000_000, added_size=295_000_000
            ),
            BaseReport.from_results(
                trixie,
                [
                    make_result(
                        trixie, {"numpy": "1.26.4", "pandas": "2.1.4"}, Verdict.NO_WHEEL, error="x"
                    )
                ],
                image_size=None,
            ),
        ),
    )


# -- the page, parsed -------------------------------------------------------------

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node | str] = field(default_factory=list)

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def iter(self) -> Iterator[Node]:
        yield self
        for c in self.children:
            if isinstance(c, Node):
                yield from c.iter()

    def find_all(self, tag: str, **attrs: str) -> list[Node]:
        """Elements named ``tag`` with these attributes (``data_base`` means
        ``data-base``; ``class_`` matches one of the classes)."""
        wanted = {k.rstrip("_").replace("_", "-"): v for k, v in attrs.items()}
        return [n for n in self.iter() if n.tag == tag and n.has(wanted)]

    def has(self, attrs: dict[str, str]) -> bool:
        return all(
            v in self.classes() if k == "class" else self.attrs.get(k) == v
            for k, v in attrs.items()
        )

    def find(self, tag: str, **attrs: str) -> Node:
        found = self.find_all(tag, **attrs)
        assert len(found) == 1, (tag, attrs, len(found))
        return found[0]

    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())


class TreeBuilder(HTMLParser):
    """Just enough of a DOM to query the report; fails on mismatched tags."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack[-1].tag == tag, f"</{tag}> closes <{self.stack[-1].tag}>"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(html: str) -> Node:
    builder = TreeBuilder()
    builder.feed(html)
    builder.close()
    assert builder.stack == [builder.root], "unclosed elements"
    return builder.root


def squash(text: str) -> str:
    return " ".join(text.split())


def expected_cells(base: BaseReport, a: str, b: str) -> dict[tuple[str, str], tuple[int, int]]:
    """(passed, passed + failures attributed to a x b) per pair of versions, counted
    from the input (one result per combination)."""
    out: dict[tuple[str, str], tuple[int, int]] = {}
    for r in base.results:
        v: dict[str, Version] = dict(r.requested)
        if a in v and b in v:
            blamed = attribute(
                verdict=r.verdict,
                versions=r.versions,
                failed=r.failed,
                system_deps=r.system_deps,
                findings=base.findings,
            ).implicates(canonicalize_name(a), canonicalize_name(b))
            p, t = out.get((str(v[a]), str(v[b])), (0, 0))
            out[str(v[a]), str(v[b])] = (p + r.verdict.ok, t + (r.verdict.ok or blamed))
    return out


def with_checks(result: ComboResult, *extra: tuple[str, CheckVerdict, str]) -> ComboResult:
    """``result`` with more checks (name, verdict, error): check errors and skips,
    which leave the verdict as it is."""
    return dataclasses.replace(
        result,
        checks=(
            *result.checks,
            *(
                CheckResult(name=name, verdict=verdict, duration=0.1, error=error)
                for name, verdict, error in extra
            ),
        ),
    )


CHECK_ERROR = (
    "lightgbm+numpy:native-train",
    CheckVerdict.CHECK_ERROR,
    "AttributeError: module 'lightgbm' has no attribute 'early_stopping'",
)
OUT_OF_RANGE = (
    "lightgbm+scikit-learn:sklearn-api",
    CheckVerdict.SKIPPED,
    "needs lightgbm>=3.0, have 2.3.1",
)
