"""The scan and check workflows end to end without Docker: a real planner over a small
in-memory index, the real harness pipeline over a fake runtime, a real SQLite results
database; and the scan's parts (shards, JUnit XML)."""

from __future__ import annotations

import dataclasses
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from packaging.requirements import Requirement
from packaging.tags import Tag
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from compat.config import RunConfig
from compat.effects.container import ENGINE_GONE, ExecResult
from compat.errors import (
    EngineUnavailable,
    ExitCode,
    IncompatibleFound,
    ProjectNotFound,
    UsageError,
)
from compat.harness import Pipeline
from compat.matrix import BuildPolicy, parse_matrix
from compat.model import Combo, ComboResult, CoreMetadata, DistFile, FileKind, Pin, Verdict
from compat.report.junit import write_junit
from compat.report.summary import Row
from compat.resolve.resolver import Conflict
from compat.store import Store, sqlite_url
from compat.targets.target import Target
from compat.workflows.check import check
from compat.workflows.scan import ScanOutcome, ScanRequest, Shard, scan
from compat.workflows.session import Session
from tests.helpers.harness import (
    Answer,
    FakeBackend,
    done_event,
    exec_result,
    glibc_target,
    passing_suite,
    result_event,
    runner_stdout,
    sha256_of,
    sites_of,
    start_event,
    write_wheel,
)
from tests.helpers.pipeline import session_of
from tests.helpers.reporter import RecordingReporter
from tests.helpers.results import recorded_runs


def combo(numpy: str, pandas: str) -> Combo:
    pins = tuple(
        Pin(
            name=canonicalize_name(n),
            version=Version(v),
            filename=f"{n}-{v}.whl",
            url=f"https://files.example/{n}-{v}.whl",
            sha256=f"{n}{v}".encode().hex().ljust(64, "0"),
            kind=FileKind.WHEEL,
        )
        for n, v in (("numpy", numpy), ("pandas", pandas))
    )
    return Combo(target="t", pins=pins, requested=(pins[0].name, pins[1].name))


COMBOS = [combo(f"2.{a}.0", f"2.{b}.0") for a in range(5) for b in range(4)]


def test_shards_are_disjoint_cover_the_plan_and_stable() -> None:
    slices = [Shard(k=k, n=3).select(COMBOS) for k in (1, 2, 3)]
    ids = [c.id for s in slices for c in s]
    assert sorted(ids) == sorted(c.id for c in COMBOS)
    assert len(set(ids)) == len(ids)
    # a combination keeps its shard when others leave the plan
    assert {c.id for c in Shard(k=2, n=3).select(COMBOS[::2])} <= {c.id for c in slices[1]}


@pytest.mark.parametrize("bad", ["3", "0/2", "3/2", "a/b"])
def test_bad_shard_spec(bad: str) -> None:
    with pytest.raises(UsageError, match="--shard"):
        Shard.parse(bad)


def test_junit_has_one_case_per_combination_with_failures(tmp_path: Path) -> None:
    good = ComboResult(combo=COMBOS[0], verdict=Verdict.PASS, duration=1.5)
    bad = ComboResult(
        combo=COMBOS[1],
        verdict=Verdict.IMPORT_ERROR,
        failed_check="import:pandas",
        error="ValueError: numpy.dtype size changed",
        log="Traceback ...",
        duration=0.5,
    )
    rows = [Row(label="scikit-learn", verdict=Verdict.NO_WHEEL, error="no musllinux wheel")]
    rows += [Row.of(good), Row.of(bad)]
    path = write_junit(tmp_path / "j.xml", suite="compat.ml.alpine", rows=rows, results=[good, bad])
    suite = ET.parse(path).getroot().find("testsuite")
    assert suite is not None
    assert suite.get("tests") == "3"
    assert suite.get("failures") == "2"
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [r.label for r in rows]
    failure = cases[2].find("failure")
    assert failure is not None
    assert failure.get("type") == "import-error"
    assert "import:pandas: ValueError" in (failure.get("message") or "")
    assert failure.text == "Traceback ..."
    assert cases[1].find("failure") is None


# ---- the workflow ------------------------------------------------------------------

_TAGS = frozenset({Tag("py3", "none", "any")})


class WheelIndex:
    """An index of tiny real wheels: alpha 1.0 and 2.0, beta 1.0 (which needs alpha).
    It also serves the files, so the pipeline's fetch finds them by URL."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir()
        self.requires = {("beta", "1.0"): ("alpha>=1",)}
        self._files: dict[NormalizedName, list[DistFile]] = {}
        self.content: dict[str, bytes] = {}
        for name, version in (("alpha", "1.0"), ("alpha", "2.0"), ("beta", "1.0")):
            wheel = write_wheel(directory, name, version)
            self.content[f"/{wheel.name}"] = wheel.read_bytes()
            self._files.setdefault(canonicalize_name(name), []).append(
                DistFile(
                    name=canonicalize_name(name),
                    version=Version(version),
                    filename=wheel.name,
                    url=f"https://files.example/{wheel.name}",
                    sha256=sha256_of(wheel),
                    kind=FileKind.WHEEL,
                    tags=_TAGS,
                )
            )

    def files(self, name: NormalizedName) -> Sequence[DistFile]:
        if name not in self._files:
            raise ProjectNotFound(name, "the test index")
        return self._files[name]

    def metadata(self, file: DistFile) -> CoreMetadata:
        requires = self.requires.get((file.name, str(file.version)), ())
        return CoreMetadata(
            name=file.name,
            version=file.version,
            requires_dist=tuple(Requirement(r) for r in requires),
        )

    def prefetch(self, files: Iterable[DistFile]) -> None:
        pass

    def client(self) -> httpx.Client:
        def handler(request: httpx.Request) -> httpx.Response:
            body = self.content.get(request.url.path)
            return httpx.Response(200, content=body) if body is not None else httpx.Response(404)

        return httpx.Client(transport=httpx.MockTransport(handler))


BROKEN = "ImportError: alpha 2.0 breaks beta"


def answer_for(index: WheelIndex) -> Answer:
    """The smoke runner's output: any combination with alpha 2.0 fails to import."""
    alpha2 = next(f.sha256 for f in index.files(canonicalize_name("alpha")) if f.version.major == 2)

    def answer(argv: list[str]) -> ExecResult:
        if f"/store/{alpha2}" in sites_of(argv):
            failing = result_event("import", "import-error", error=BROKEN)
            return exec_result(
                runner_stdout(start_event("import"), failing, done_event(**{"import-error": 1}))
            )
        return exec_result(passing_suite("import"))

    return answer


@pytest.fixture
def index(tmp_path: Path) -> WheelIndex:
    return WheelIndex(tmp_path / "wheels")


@pytest.fixture
def store(tmp_path: Path) -> Iterable[Store]:
    with Store.open(sqlite_url(tmp_path / "results.db")) as opened:
        yield opened


PROBED = dataclasses.replace(glibc_target(), image_id="sha256:base")  # as a probe reports it


def run_scan(
    index: WheelIndex,
    store: Store,
    tmp_path: Path,
    *,
    the_target: Target = PROBED,
    reporter: RecordingReporter | None = None,
    runtime: FakeBackend | None = None,
    add_system_deps: bool = True,
    retest: bool = False,
    **request: Any,
) -> tuple[ScanOutcome, FakeBackend, RecordingReporter]:
    runtime = runtime or FakeBackend(answer_for(index))
    reporter = reporter or RecordingReporter()
    matrix = parse_matrix(
        {"packages": {"alpha": ">=1", "beta": ">=1"}, "strategy": "exhaustive"}, path="m.toml"
    )
    config = RunConfig(jobs=1, add_system_deps=add_system_deps, retest=retest)
    cache_dir = tmp_path / "cache"
    with Pipeline(runtime, config, cache_dir=cache_dir, client=index.client()) as pipeline:
        session = session_of(
            store, pipeline, index, reporter=reporter, config=config, target=the_target
        )
        outcome = scan(ScanRequest(matrix=matrix, matrix_path="m.toml", **request), session)
    return outcome, runtime, reporter


def test_a_scan_plans_runs_and_stores_every_result_and_summarises(
    index: WheelIndex, store: Store, tmp_path: Path
) -> None:
    junit = tmp_path / "junit.xml"
    outcome, runtime, reporter = run_scan(index, store, tmp_path, junit=junit)

    assert len(outcome.plan.combos) == 2  # alpha 1.0 and 2.0, each with beta 1.0
    verdicts = {r.combo.version_of(canonicalize_name("alpha")): r.verdict for r in outcome.results}
    assert verdicts == {Version("1.0"): Verdict.PASS, Version("2.0"): Verdict.IMPORT_ERROR}
    assert len(runtime.executor_obj.calls) == 2
    assert outcome.failures == 1
    assert outcome.title == "m on test (fake)"
    # every result is in the database, in this scan's run
    stored = store.results(run_id=outcome.run_id)
    assert sorted(r.verdict for r in stored) == sorted(verdicts.values())
    assert next(r for r in stored if not r.verdict.ok).error == BROKEN
    # the display saw the plan, the run around the results, and each result once
    assert reporter.events == ["plan_started", "plan_finished", "run_started 2", "run_finished"]
    assert sorted(r.combo.id for r in reporter.finished) == sorted(
        c.id for c in outcome.plan.combos
    )
    assert ("run", 2, 2) in reporter.stages
    # JUnit XML says the same
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures")) == ("2", "1")
    # the scan completed: only CI asks for a failing exit status
    outcome.raise_for_status(fail_on_incompatible=False)
    with pytest.raises(IncompatibleFound, match="1 of 2 combinations do not pass"):
        outcome.raise_for_status(fail_on_incompatible=True)


def test_a_second_scan_of_the_same_image_runs_nothing_unless_asked(
    index: WheelIndex, store: Store, tmp_path: Path
) -> None:
    first, _, _ = run_scan(index, store, tmp_path)

    again, runtime, reporter = run_scan(index, store, tmp_path)
    assert runtime.executor_obj.calls == []
    assert again.results == ()
    assert "2 combinations already tested on this image (--retest runs them)" in reporter.lines
    # the summary still shows them, from the earlier run
    assert sorted(r.verdict for r in again.rows) == sorted(r.verdict for r in first.results)
    assert all("earlier run" in r.label for r in again.rows)

    retest, runtime, _ = run_scan(index, store, tmp_path, retest=True)
    assert len(runtime.executor_obj.calls) == 2
    assert len(retest.results) == 2


def test_an_unprobed_target_is_never_skipped(
    index: WheelIndex, store: Store, tmp_path: Path
) -> None:
    run_scan(index, store, tmp_path, the_target=glibc_target())
    again, runtime, _ = run_scan(index, store, tmp_path, the_target=glibc_target())
    assert len(runtime.executor_obj.calls) == 2  # no image ID: nothing to match results by
    assert len(again.results) == 2


def test_shards_run_disjoint_slices_of_the_plan(
    index: WheelIndex, store: Store, tmp_path: Path
) -> None:
    ran: list[str] = []
    for k in (1, 2):
        outcome, _, reporter = run_scan(index, store, tmp_path, shard=Shard(k=k, n=2))
        ran += [r.combo.id for r in outcome.results]
        assert any(line.startswith(f"shard {k}/2: ") for line in reporter.lines)
    assert sorted(ran) == sorted(c.id for c in outcome.plan.combos)


def test_an_interrupted_scan_keeps_what_finished(
    index: WheelIndex, store: Store, tmp_path: Path
) -> None:
    answer = answer_for(index)
    calls: list[int] = []

    def interrupt_second(argv: list[str]) -> ExecResult:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return answer(argv)

    reporter = RecordingReporter()
    with pytest.raises(KeyboardInterrupt):
        run_scan(index, store, tmp_path, runtime=FakeBackend(interrupt_second), reporter=reporter)
    assert len(store.results()) == 1
    assert reporter.events[-1] == "run_finished"  # the progress display is taken down
    assert any(
        line.startswith("interrupted: finished results are kept in") for line in reporter.lines
    )


GOMP = "ImportError: libgomp.so.1: cannot open shared object file: No such file or directory"


def test_an_interrupted_system_package_retry_commits_only_final_results(
    index: WheelIndex, store: Store, tmp_path: Path
) -> None:
    """Ctrl-C while the combination that lacked a library runs again in the derived
    image (after the other ran there: the first run found the library missing): its
    first answer is not final, so it is not recorded; the rerun reuses the final one
    and runs only the other."""
    alpha2 = next(f.sha256 for f in index.files(canonicalize_name("alpha")) if f.version.major == 2)
    derived_runs: list[int] = []

    def answer(interrupt: bool) -> Answer:
        def run(argv: list[str]) -> ExecResult:
            if "/opt/compat-smoke/sha256:derived/runner.py" in argv:
                derived_runs.append(1)
                if interrupt and len(derived_runs) == 2:
                    raise KeyboardInterrupt
                return exec_result(passing_suite("import"))
            if f"/store/{alpha2}" in sites_of(argv):
                failing = result_event("import", "import-error", error=GOMP)
                return exec_result(
                    runner_stdout(start_event("import"), failing, done_event(**{"import-error": 1}))
                )
            return exec_result(passing_suite("import"))

        return run

    with pytest.raises(KeyboardInterrupt):
        run_scan(index, store, tmp_path, runtime=FakeBackend(answer(True)), add_system_deps=True)
    stored = store.results()
    assert [r.verdict for r in stored] == [Verdict.PASS]  # no first-pass import-error row
    assert derived_runs == [1, 1]

    again, runtime, _ = run_scan(
        index, store, tmp_path, runtime=FakeBackend(answer(False)), add_system_deps=True
    )
    (rerun,) = again.results  # the finished combination is reused, not run again
    assert rerun.combo.version_of(canonicalize_name("alpha")) == Version("2.0")
    assert rerun.verdict is Verdict.PASS
    assert rerun.added_system_deps == ("libgomp1",)
    assert runtime.derived == [("libgomp1",)]
    assert sorted(r.verdict for r in store.results()) == [Verdict.PASS, Verdict.PASS]


def test_the_engine_going_away_says_what_finished_is_kept_and_where(
    index: WheelIndex, store: Store, tmp_path: Path
) -> None:
    answer = answer_for(index)
    calls: list[int] = []

    def engine_gone_at_second(argv: list[str]) -> ExecResult:
        calls.append(1)
        if len(calls) == 2:
            raise EngineUnavailable(ENGINE_GONE)
        return answer(argv)

    with pytest.raises(EngineUnavailable) as raised:
        run_scan(index, store, tmp_path, runtime=FakeBackend(engine_gone_at_second))
    assert raised.value.exit_code == ExitCode.NO_ENGINE
    (run,) = recorded_runs(store.url)
    first, kept = str(raised.value).splitlines()
    assert first == ENGINE_GONE
    assert kept == f"the 1 results that finished are kept in {store.url} (run {run.id})"
    assert len(store.results()) == 1


def test_what_an_image_needs_is_learnt_once_and_installed_on_every_later_run(
    index: WheelIndex, store: Store, tmp_path: Path
) -> None:
    alpha2 = next(f.sha256 for f in index.files(canonicalize_name("alpha")) if f.version.major == 2)

    def answer(argv: list[str]) -> ExecResult:
        if "/opt/compat-smoke/sha256:derived/runner.py" in argv:
            return exec_result(passing_suite("import"))
        if f"/store/{alpha2}" in sites_of(argv):
            failing = result_event("import", "import-error", error=GOMP)
            return exec_result(
                runner_stdout(start_event("import"), failing, done_event(**{"import-error": 1}))
            )
        return exec_result(passing_suite("import"))

    def base_runs(runtime: FakeBackend) -> int:
        return sum(
            "/opt/compat-smoke/sha256:base/runner.py" in c for c in runtime.executor_obj.calls
        )

    first, runtime, _ = run_scan(index, store, tmp_path, runtime=FakeBackend(answer))
    # nothing known yet: alpha 2.0, run first and alone, fails; the other runs with
    # libgomp1 installed, and so does alpha 2.0 again. Only alpha 2.0 needs it (it found
    # it missing; the other's files name no library of it)
    assert base_runs(runtime) == 1
    assert all(r.ok for r in first.results)
    needs = {
        r.combo.versions[canonicalize_name("alpha")].major: r.added_system_deps
        for r in first.results
    }
    assert needs == {2: ("libgomp1",), 1: ()}
    assert store.system_packages("sha256:base") == ("libgomp1",)

    # a later run on the image installs it first: nothing runs twice to find it again
    again, runtime, reporter = run_scan(
        index, store, tmp_path, runtime=FakeBackend(answer), retest=True
    )
    assert base_runs(runtime) == 0
    assert runtime.derived == [("libgomp1",)]
    assert all(r.ok for r in again.results)
    assert any("installing libgomp1, which earlier runs found" in line for line in reporter.lines)

    # unless told otherwise: the bare image, and its verdict
    bare, runtime, _ = run_scan(
        index, store, tmp_path, runtime=FakeBackend(answer), retest=True, add_system_deps=False
    )
    assert runtime.derived == []
    assert sorted(r.verdict for r in bare.results) == [Verdict.IMPORT_ERROR, Verdict.PASS]


def _check(index: WheelIndex, store: Store, tmp_path: Path, *pins: str) -> ComboResult | Conflict:
    opened: list[Store] = []

    runtime = FakeBackend(answer_for(index))
    cache_dir = tmp_path / "cache"
    with Pipeline(runtime, RunConfig(), cache_dir=cache_dir, client=index.client()) as b:

        def open_session() -> Session:
            opened.append(store)
            return session_of(store, b, index, reporter=RecordingReporter())

        outcome = check(
            [Requirement(p) for p in pins],
            target=PROBED,
            index=index,
            open_session=open_session,
            build=BuildPolicy(),
            force=False,
        )
    assert len(opened) == (0 if isinstance(outcome, Conflict) else 1)
    return outcome


def test_check_runs_and_records_one_set_of_pins(
    index: WheelIndex, store: Store, tmp_path: Path
) -> None:
    outcome = _check(index, store, tmp_path, "alpha==2.0", "beta")
    assert isinstance(outcome, ComboResult)
    assert outcome.verdict is Verdict.IMPORT_ERROR
    assert outcome.combo.version_of(canonicalize_name("beta")) == Version("1.0")
    (row,) = store.results()
    assert row.combination_id == outcome.combo.id


def test_check_of_pins_the_metadata_forbids_runs_nothing(
    index: WheelIndex, store: Store, tmp_path: Path
) -> None:
    index.requires[("beta", "1.0")] = ("alpha<2",)
    outcome = _check(index, store, tmp_path, "alpha==2.0", "beta")
    assert isinstance(outcome, Conflict)
    assert store.results() == []


@pytest.mark.parametrize(
    ("pin", "said"),
    [
        ("alpha==3.0", "alpha has no release 3.0: the index has 1.0 to 2.0 (nearest: 2.0)"),
        ("alpha==1.5", "alpha has no release 1.5: the index has 1.0 to 2.0 (nearest: 1.0, 2.0)"),
    ],
)
def test_a_pin_of_a_release_that_does_not_exist_is_a_usage_error(
    index: WheelIndex, store: Store, tmp_path: Path, pin: str, said: str
) -> None:
    with pytest.raises(UsageError, match=re.escape(said)):
        _check(index, store, tmp_path, pin, "beta")
    assert store.results() == []
    assert isinstance(_check(index, store, tmp_path, "alpha==2", "beta"), ComboResult)  # 2.0
