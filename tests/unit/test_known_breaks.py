"""The corpus of known breaks is well formed, and bench_recall counts it right."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "tests" / "data" / "known-breaks.toml"


def load_bench() -> ModuleType:
    # benchmarks/ is a folder of scripts, not a package: load the file itself.
    spec = importlib.util.spec_from_file_location(
        "bench_recall", REPO / "benchmarks" / "bench_recall.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_recall", module)
    spec.loader.exec_module(module)
    return module


bench = load_bench()


def test_corpus_has_forty_cases_over_eight_pairs() -> None:
    cases = bench.load_corpus(CORPUS)
    assert len(cases) >= 40
    pairs = {bench.pair_label(case.pair) for case in cases}
    assert len(pairs) >= 8


def test_every_case_names_its_upstream_source_and_a_one_package_neighbour() -> None:
    for case in bench.load_corpus(CORPUS):
        assert case.link.startswith("https://"), case.id
        assert case.source in {"issue", "changelog", "repodata-patch"}, case.id
        if case.neighbour is not None:
            assert case.changed in case.pair, case.id


def test_most_cases_have_a_passing_neighbour() -> None:
    cases = bench.load_corpus(CORPUS)
    with_neighbour = [case for case in cases if case.neighbour is not None]
    assert len(with_neighbour) >= len(cases) * 3 // 4


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "corpus.toml"
    path.write_text(body, encoding="utf-8")
    return path


GOOD = """
[[case]]
id = "x"
pair = ["numpy", "pandas"]
verdict = "import-error"
pins = ["numpy==2.0.2", "pandas==2.1.4"]
neighbour = ["numpy==2.0.2", "pandas==2.2.2"]
link = "https://example.org/issue/1"
source = "issue"
description = "d"
reproduce = "import pandas"
"""


def test_a_well_formed_case_loads(tmp_path: Path) -> None:
    (case,) = bench.load_corpus(write(tmp_path, GOOD))
    assert case.changed == "pandas"
    assert case.pins == ("numpy==2.0.2", "pandas==2.1.4")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('verdict = "import-error"', 'verdict = "broken"'), "verdict"),
        (('"pandas==2.1.4"]', '"pandas>=2.1"]'), "exact pin"),
        (('pair = ["numpy", "pandas"]', 'pair = ["numpy", "torch"]'), "pair"),
        (('pins = ["numpy==2.0.2"', 'pins = ["numpy==1.21.0"'), "wheel floor"),
        (('neighbour = ["numpy==2.0.2"', 'neighbour = ["numpy==2.1.3"'), "exactly one"),
        (('link = "https://', 'link = "http://'), "https"),
    ],
)
def test_a_malformed_case_is_refused(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        bench.load_corpus(write(tmp_path, GOOD.replace(*change)))


def test_duplicate_ids_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="duplicate"):
        bench.load_corpus(write(tmp_path, GOOD + GOOD))


def outcome(verdict: str, *checks: str) -> object:
    return bench.Outcome(verdict=verdict, flagged_by=checks, error=None, seconds=1.0)


def test_summary_counts_recall_per_pair_and_false_alarms(tmp_path: Path) -> None:
    (case,) = bench.load_corpus(write(tmp_path, GOOD))
    rows = [
        bench.Row(
            case=case, failing=outcome("import-error", "import:pandas"), neighbour=outcome("pass")
        ),
        bench.Row(case=case, failing=outcome("pass"), neighbour=outcome("runtime-error", "x")),
        bench.Row(
            case=case, failing=outcome("install-failed"), neighbour=outcome("install-failed")
        ),
    ]
    summary = bench.summarise(rows)
    assert (summary.flagged, summary.judged, summary.not_run) == (1, 2, 1)
    assert summary.per_pair == {"numpy x pandas": (1, 2)}
    assert summary.per_verdict == {"import-error": (1, 2)}
    assert summary.verdict_matches == 1
    assert summary.attributed == 1
    assert (summary.false_alarms, summary.neighbours_judged, summary.neighbours_not_run) == (
        1,
        2,
        1,
    )
    text = bench.report(rows, summary, header="h")
    assert "recall: 1 / 2" in text
    assert "FALSE ALARM runtime-error x" in text
    assert bench.short(["a", "b", "c", "d"]) == "a, b (+2 more)"


def test_a_neighbour_flagged_only_by_known_genuine_breaks_is_no_false_alarm(
    tmp_path: Path,
) -> None:
    """The deep tier finds other real breaks in a neighbour (pandas 1.5.3 with
    matplotlib >= 3.7 fails on plain axes): listed with their source, not counted
    as false alarms; any flag no known break explains still is one."""
    (case,) = bench.load_corpus(write(tmp_path, GOOD))
    (tmp_path / "known.toml").write_text(
        """
[[exception]]
when = ["pandas<2", "matplotlib>=3.7"]
check = "deep:pandas:*::test_plain_axes"
reason = "get_subplotspec() is None for plain axes"
source = "https://github.com/matplotlib/matplotlib/issues/25538"
""",
        encoding="utf-8",
    )
    known = bench.load_known_breaks(tmp_path / "known.toml")
    plain = "deep:pandas:pandas/tests/plotting/frame/test_frame.py::TestFrame::test_plain_axes"
    versions = {"pandas": "1.5.3", "matplotlib": "3.8.4", "numpy": "1.26.4"}

    def flagged(*checks: str, **pins: str) -> object:
        return bench.Outcome(
            verdict="runtime-error",
            flagged_by=checks,
            error=None,
            seconds=1.0,
            versions={**versions, **pins},
        )

    genuine = flagged(plain)
    assert bench.explained_by(genuine, known, "host") == (
        "https://github.com/matplotlib/matplotlib/issues/25538",
    )
    assert bench.explained_by(flagged(plain, "deep:pandas:other"), known, "host") == ()
    assert bench.explained_by(flagged(plain, matplotlib="3.6.3"), known, "host") == ()
    rows = [
        bench.Row(
            case=case,
            failing=outcome("runtime-error", "deep:pandas:x"),
            neighbour=genuine,
            genuine=bench.explained_by(genuine, known, "host"),
        ),
        bench.Row(case=case, failing=outcome("pass"), neighbour=flagged(plain, "numpy:x")),
    ]
    summary = bench.summarise(rows)
    assert (summary.false_alarms, summary.genuine, summary.by_shipped_tests) == (1, 1, 1)
    text = bench.report(rows, summary, header="h", deep=True)
    assert "GENUINE (https://github.com/matplotlib/matplotlib/issues/25538)" in text
    assert "false alarms: 1 / 2 passing neighbours; 1 more flagged only by genuine" in text
    assert "shipped tests: 1 of the 1 flagged" in text


def test_check_json_gives_verdict_and_the_checks_that_failed() -> None:
    stdout = """{"verdict": "runtime-error", "error": null, "checks": [
        {"name": "import:pandas", "verdict": "pass", "error": null},
        {"name": "pandas+scipy:windows", "verdict": "runtime-error",
         "error": "ValueError: bad\\nmore"},
        {"name": "lightgbm:x", "verdict": "skipped", "error": null},
        {"name": "lightgbm:y", "verdict": "check-error", "error": "TypeError: z"}],
        "combo": {"pins": [{"name": "pandas", "version": "1.5.3"},
                           {"name": "python-dateutil", "version": "4.0.0"}]}}"""
    outcome = bench.parse_check_json(stdout, 3.0)
    assert outcome.verdict == "runtime-error"
    assert outcome.flagged_by == ("pandas+scipy:windows",)
    assert outcome.error == "ValueError: bad"
    assert outcome.check_errors == ("lightgbm:y",)
    assert outcome.versions == {"pandas": "1.5.3", "python-dateutil": "4.0.0"}


def test_cache_key_changes_with_suite_depth_and_place_not_pin_order() -> None:
    key = bench.cache_key(where="local", depth=None, suite="s1", pins=["b==1", "a==2"])
    assert key == bench.cache_key(where="local", depth=None, suite="s1", pins=["a==2", "b==1"])
    assert key != bench.cache_key(where="local", depth="deep", suite="s1", pins=["a==2", "b==1"])
    assert key != bench.cache_key(where="local", depth=None, suite="s2", pins=["a==2", "b==1"])
    assert key != bench.cache_key(where="docker:x", depth=None, suite="s1", pins=["a==2", "b==1"])


def test_cache_round_trips_outcomes(tmp_path: Path) -> None:
    cache = bench.Cache(tmp_path / "c.json")
    cache.put("k", outcome("crash", "a", "b"))
    again = bench.Cache(tmp_path / "c.json").get("k")
    assert again == outcome("crash", "a", "b")
    assert bench.Cache(tmp_path / "c.json").get("other") is None


def test_a_flag_counts_as_attributed_only_from_a_check_of_the_pair(tmp_path: Path) -> None:
    (case,) = bench.load_corpus(write(tmp_path, GOOD))
    assert bench.attributed(case, outcome("runtime-error", "numpy+pandas:ufuncs"))
    assert bench.attributed(case, outcome("import-error", "import:pandas"))
    assert bench.attributed(case, outcome("runtime-error", "deep:pandas:test_x", "b+c:y"))
    assert not bench.attributed(case, outcome("runtime-error", "lightgbm+scikit-learn:api"))
    assert not bench.attributed(case, outcome("pass"))
