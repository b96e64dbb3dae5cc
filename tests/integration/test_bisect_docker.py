"""Bisection with real containers on bookworm (Python 3.11) and real PyPI: the pandas
2.1.1 wheels, built against numpy 1.x, fail to import with numpy 2.0.2. From a good
numpy 1.26.4 + pandas 2.2.2 to a failing numpy 2.0.2 + pandas 2.1.1, neither change
alone breaks anything: bisection must name both."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from compat.config import RunConfig
from compat.harness import make_pipeline
from compat.model import Combo, ComboResult, Verdict
from compat.reporter import Reporter
from compat.resolve.candidates import CandidateSource, Dependency
from compat.resolve.resolver import Preferences, Resolver
from compat.settings import NetworkSettings
from compat.store import Store, sqlite_url
from compat.targets.probe import probe_image
from compat.targets.target import Target
from compat.workflows.bisect import bisect
from compat.workflows.session import Session
from tests.helpers.docker import require_docker

BOOKWORM = "local/debian-python:bookworm"


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    kept = os.environ.get("COMPAT_TEST_CACHE")  # keeps downloads between local runs
    if kept:
        Path(kept).mkdir(parents=True, exist_ok=True)
        return Path(kept)
    return tmp_path_factory.mktemp("compat-cache")


@pytest.fixture(scope="module")
def network() -> NetworkSettings:
    return NetworkSettings.from_env(os.environ)


@pytest.fixture(scope="module")
def index(cache_dir: Path, network: NetworkSettings) -> Iterator[Any]:
    from compat.index.pypi import PyPIIndex

    with PyPIIndex(network, cache_dir=cache_dir / "index") as idx:
        yield idx


def pinned(index: Any, target: Target, versions: dict[str, str]) -> Combo:
    forced = {canonicalize_name(n): Version(v) for n, v in versions.items()}
    requests = [
        Dependency(name=n, extras=frozenset(), specifier=SpecifierSet(f"=={v}"))
        for n, v in forced.items()
    ]
    outcome = Resolver(CandidateSource(index, target)).resolve(
        requests,
        order=[canonicalize_name("numpy"), canonicalize_name("pandas")],
        prefs=Preferences(forced=forced),
    )
    assert isinstance(outcome, Combo), outcome
    return outcome


def test_bisect_names_numpy2_with_the_old_pandas(
    tmp_path: Path, cache_dir: Path, network: NetworkSettings, index: Any
) -> None:
    require_docker()
    import docker

    target = probe_image(BOOKWORM, name=BOOKWORM, cache_dir=cache_dir, client=docker.from_env())
    # python-dateutil 4 breaks every pandas before 3.1.1 (time zones): not what is bisected
    good = pinned(
        index, target, {"numpy": "1.26.4", "pandas": "2.2.2", "python-dateutil": "2.9.0.post0"}
    )
    # the same dependencies as the good side: exactly two packages differ
    others: dict[str, str] = {
        p.name: str(p.version) for p in good.pins if p.name not in ("numpy", "pandas")
    }
    failing = pinned(index, target, {**others, "numpy": "2.0.2", "pandas": "2.1.1"})
    config = RunConfig(backend="docker", jobs=2)
    started = time.monotonic()
    with (
        Store.open(sqlite_url(tmp_path / "results.db")) as store,
        make_pipeline(config, cache_dir=cache_dir, network=network, reporter=Reporter()) as backend,
    ):
        ids: dict[str, int] = {}
        with store.run(target, backend=backend.kind) as run_id:

            def keep(result: ComboResult) -> None:
                ids[result.combo.id] = store.record(run_id, target, result)

            ends = backend.run(target, [good, failing], on_result=keep, reporter=Reporter())
        verdicts = {r.combo.id: r.verdict for r in ends}
        assert verdicts[good.id] is Verdict.PASS
        assert verdicts[failing.id] is Verdict.IMPORT_ERROR

        session = Session(
            pipeline=backend, store=store, index=index, reporter=Reporter(), config=config
        )
        found = bisect(session, ids[failing.id], widen=0)  # good: closest; the pair alone
        print("\n".join(found.lines()))

        assert found.good_result_id == ids[good.id]
        assert {c.name for c in found.culprits} == {"numpy", "pandas"}
        assert found.packages == {"numpy": "2.0.2", "pandas": "2.1.1"}
        assert found.verdict is Verdict.IMPORT_ERROR
        assert "numpy" in found.explanation
        assert found.runs == 2  # numpy alone, pandas alone: both pass
        assert all(not p.failed for p in found.probes if len(p.switched) == 1)
        (known,) = store.incompatibilities(target.name)
        assert known.packages == found.packages
        assert sorted(known.evidence) == [*sorted(ids.values()), 3, 4]  # ends, then probes
        # numpy as the only change (pandas 2.1.1 on both sides): numpy, with pandas beside it
        old_pandas = next(p for p in found.probes if p.switched == ("pandas",))
        assert old_pandas.result_id is not None
        # one change: the ends say it all; then the pair (numpy with the pandas beside
        # it) widened by one release each way, each side moved alone: fixed neighbours
        # (no later release comes between them), all failing the same way
        alone = bisect(session, ids[failing.id], old_pandas.result_id, widen=1)
        print("\n".join(alone.lines()))
        assert [c.name for c in alone.culprits] == ["numpy"]
        assert alone.context == {"pandas": "2.1.1"}
        assert sorted((n.name, str(n.version), n.failed) for n in alone.neighbours) == [
            ("numpy", "2.0.1", True),
            ("numpy", "2.1.0", True),
            ("pandas", "2.1.0", True),
            ("pandas", "2.1.2", True),
        ]
        assert alone.runs == 4
        assert alone.ranges == {
            "numpy": SpecifierSet(">=2.0.1,<=2.1.0"),
            "pandas": SpecifierSet(">=2.1.0,<=2.1.2"),
        }
        (known,) = store.incompatibilities(target.name)  # the same pair: one row, widened
        assert known.packages == found.packages
        assert known.ranges == alone.ranges
    elapsed = time.monotonic() - started
    print(f"bisect on {BOOKWORM}: {found.runs} runs, {found.duration:.1f} s; test {elapsed:.1f} s")
