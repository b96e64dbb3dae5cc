"""Check outcomes reused by their inputs: the keys, what the results database
keeps under them, and how the runner's events take them."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.utils import NormalizedName, canonicalize_name

from compat.harness.classify import classify
from compat.harness.reuse import Reuse
from compat.model import CheckKind, CheckResult, CheckVerdict, ComboResult, Verdict, sorted_inputs
from compat.smoke.checks import builtin_checks
from compat.store import Store
from compat.targets.target import Target
from tests.helpers.results import MUSL_ID, make_combo, make_target
from tests.unit.store.test_store import db_url, make_db_url  # noqa: F401  (fixtures)

CHECK = builtin_checks()[0].name
OTHER_ID = "sha256:" + "c" * 64


@pytest.fixture
def kept(request: pytest.FixtureRequest) -> Iterator[Store]:
    """A fresh results database (SQLite here, PostgreSQL where imported with its url)."""
    with Store.open(request.getfixturevalue("db_url")) as opened:
        yield opened


def record(
    store: Store,
    target: Target,
    pins: dict[str, str],
    reuse: Reuse,
    *checks: CheckResult,
    image_id: str = MUSL_ID,
) -> str:
    """A result of the combination ``pins`` whose checks carry their reuse keys;
    returns its uid."""
    combo = make_combo(target, pins)
    keys = reuse.keys(image_id=image_id, installed=combo.versions)
    keyed = tuple(dataclasses.replace(c, key=keys.get(c.name)) for c in checks)
    run_id = store.start_run(target, backend="docker")
    result = ComboResult(
        combo=combo, verdict=Verdict.PASS, checks=keyed, backend="docker", image_id=image_id
    )
    stored = store.get(store.record(run_id, target, result))
    assert stored is not None
    return stored.uid


def ran(
    verdict: CheckVerdict = CheckVerdict.PASS,
    *,
    name: str = CHECK,
    kind: CheckKind = CheckKind.SMOKE,
    log: str = "checked 12 things",
    **inputs: str,
) -> CheckResult:
    return CheckResult(
        name=name,
        kind=kind,
        verdict=verdict,
        duration=1.5,
        error=None if verdict is CheckVerdict.PASS else "ValueError: no",
        log=log,
        inputs=sorted_inputs(inputs),
    )


def find(reuse: Reuse, pins: dict[str, str], image_id: str = MUSL_ID) -> dict[str, CheckResult]:
    target = make_target()
    combo = make_combo(target, pins)
    keys = reuse.keys(image_id=image_id, installed=combo.versions)
    return reuse.find(keys, combo.versions)


def test_an_outcome_is_reused_where_every_input_has_its_version(kept: Store) -> None:
    reuse = Reuse(kept, checks_dir=None)
    target = make_target()
    uid = record(kept, target, {"numpy": "2.0.2", "pandas": "2.2.3"}, reuse, ran(numpy="2.0.2"))

    # pandas differs, but the check did not import it
    taken = find(reuse, {"numpy": "2.0.2", "pandas": "2.1.4"})[CHECK]
    assert (taken.verdict, taken.duration, taken.reused_from) == (CheckVerdict.PASS, 0.0, uid)
    assert taken.inputs == (("numpy", "2.0.2"),)
    assert taken.log.startswith("reused: not run again")
    assert taken.log.endswith("checked 12 things")
    # an input at another version, another set of installed names, another image
    assert find(reuse, {"numpy": "2.1.0", "pandas": "2.2.3"}) == {}
    assert find(reuse, {"numpy": "2.0.2", "pandas": "2.2.3", "scipy": "1.14.1"}) == {}
    assert find(reuse, {"numpy": "2.0.2", "pandas": "2.2.3"}, image_id=OTHER_ID) == {}


def test_an_input_the_image_provides_does_not_stop_reuse(kept: Store) -> None:
    """The image's own distributions are fixed by its ID, which is in the key."""
    reuse = Reuse(kept, checks_dir=None)
    record(kept, make_target(), {"numpy": "2.0.2"}, reuse, ran(numpy="2.0.2", setuptools="69.0"))
    assert CHECK in find(reuse, {"numpy": "2.0.2"})


def test_a_failure_is_reused_as_that_failure_and_a_timeout_or_crash_never(
    kept: Store,
) -> None:
    reuse = Reuse(kept, checks_dir=None)
    target = make_target()
    record(kept, target, {"numpy": "2.0.2"}, reuse, ran(CheckVerdict.TIMEOUT, numpy="2.0.2"))
    record(kept, target, {"numpy": "2.0.1"}, reuse, ran(CheckVerdict.CRASH, numpy="2.0.1"))
    assert find(reuse, {"numpy": "2.0.2"}) == find(reuse, {"numpy": "2.0.1"}) == {}

    for verdict in (
        CheckVerdict.RUNTIME_ERROR,
        CheckVerdict.IMPORT_ERROR,
        CheckVerdict.CHECK_ERROR,
    ):
        uid = record(kept, target, {"numpy": "2.0.0"}, reuse, ran(verdict, numpy="2.0.0"))
        taken = find(reuse, {"numpy": "2.0.0"})[CHECK]
        assert (taken.verdict, taken.error, taken.reused_from) == (verdict, "ValueError: no", uid)
        # a failure says nothing of another version of what it imported
        assert find(reuse, {"numpy": "2.1.0"}) == {}

    # the latest outcome under the same inputs wins: a pass after the failure
    record(kept, target, {"numpy": "2.0.0"}, reuse, ran(numpy="2.0.0"))
    assert find(reuse, {"numpy": "2.0.0"})[CHECK].verdict is CheckVerdict.PASS


def test_a_failed_import_a_check_tried_is_among_its_inputs(tmp_path: Path) -> None:
    """An import that failed leaves ``sys.modules``; it still counts, so a failure
    caused by it is never reused where that distribution has another version."""
    (tmp_path / "brokenpkg").mkdir()
    (tmp_path / "brokenpkg" / "__init__.py").write_text("raise ImportError('built for NumPy 1')\n")
    info = tmp_path / "brokenpkg-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: brokenpkg\nVersion: 1.0\n")
    (info / "top_level.txt").write_text("brokenpkg\n")
    code = (
        "import importlib.metadata, json, sys\n"
        "from compat.smoke import modules\n"
        f"sys.path.insert(0, {str(tmp_path)!r})\n"
        "modules.record_imports()\n"
        "owners = modules.Owners()\n"
        f"owners.add(next(importlib.metadata.distributions(path=[{str(tmp_path)!r}])))\n"
        "try:\n"
        "    import brokenpkg\n"
        "except ImportError:\n"
        "    pass\n"
        "assert 'brokenpkg' not in sys.modules\n"
        "print(json.dumps(modules.inputs(owners)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == {"brokenpkg": "1.0"}


def test_an_import_check_is_reused_only_as_a_pass(kept: Store) -> None:
    reuse = Reuse(kept, checks_dir=None)
    target = make_target()
    imported = ran(name="import:numpy", kind=CheckKind.IMPORT, numpy="2.0.2")
    failed = ran(
        CheckVerdict.IMPORT_ERROR, name="import:numpy", kind=CheckKind.IMPORT, numpy="2.0.1"
    )
    record(kept, target, {"numpy": "2.0.2"}, reuse, imported)
    record(kept, target, {"numpy": "2.0.1"}, reuse, failed)
    assert find(reuse, {"numpy": "2.0.2"})["import:numpy"].reused_from is not None
    # the runner takes a reused import as imported: a failed one runs again
    assert "import:numpy" not in find(reuse, {"numpy": "2.0.1"})
    # an import check is keyed per installed distribution, by the runner's code
    keys = reuse.keys(image_id=MUSL_ID, installed=[canonicalize_name("numpy")])
    assert "import:numpy" in keys
    assert "import:scipy" not in keys


def test_a_check_without_inputs_is_never_reused(kept: Store) -> None:
    reuse = Reuse(kept, checks_dir=None)
    unknown = CheckResult(name=CHECK, verdict=CheckVerdict.PASS, duration=1.0)
    record(kept, make_target(), {"numpy": "2.0.2"}, reuse, unknown)
    assert find(reuse, {"numpy": "2.0.2"}) == {}


def test_the_latest_outcome_wins_and_a_reuse_names_the_result_that_ran_it(kept: Store) -> None:
    reuse = Reuse(kept, checks_dir=None)
    target = make_target()
    record(kept, target, {"numpy": "2.0.2"}, reuse, ran(CheckVerdict.RUNTIME_ERROR, numpy="2.0.2"))
    first = record(kept, target, {"numpy": "2.0.2"}, reuse, ran(numpy="2.0.2"))
    taken = find(reuse, {"numpy": "2.0.2"})[CHECK]
    assert (taken.verdict, taken.reused_from) == (CheckVerdict.PASS, first)

    # recorded as reused, it is found again, still naming the result that ran it
    record(kept, target, {"numpy": "2.0.2"}, reuse, taken)
    again = find(reuse, {"numpy": "2.0.2"})[CHECK]
    assert again.reused_from == first
    assert again.log.count("reused: not run again") == 1


def test_a_user_checks_key_follows_its_file(kept: Store, tmp_path: Path) -> None:
    checks = tmp_path / "checks"
    checks.mkdir()
    script = checks / "mine.py"
    script.write_text("def test_it():\n    pass\n")
    installed = [canonicalize_name("numpy")]
    before = Reuse(kept, checks_dir=checks).keys(image_id=MUSL_ID, installed=installed)
    script.write_text("def test_it():\n    assert False\n")
    after = Reuse(kept, checks_dir=checks).keys(image_id=MUSL_ID, installed=installed)
    assert before["user:mine.py"] != after["user:mine.py"]
    assert before[CHECK] == after[CHECK]  # a built-in check's code did not change


def _events(*events: dict[str, object]) -> str:
    done = {"event": "done", "counts": {}, "duration": 1.0}
    return "\n".join(json.dumps(e) for e in (*events, done)) + "\n"


def test_the_runners_events_carry_inputs_and_take_reused_outcomes() -> None:
    kept = ran(numpy="2.0.2")
    stdout = _events(
        {"event": "start", "check": "import:numpy", "kind": "import"},
        {
            "event": "result",
            "check": "import:numpy",
            "kind": "import",
            "verdict": "pass",
            "duration": 0.1,
        },
        {"event": "start", "check": "numpy:other"},
        {
            "event": "result",
            "check": "numpy:other",
            "verdict": "pass",
            "duration": 0.5,
            "inputs": {"NumPy": "2.0.2"},
        },
        {"event": "reuse", "check": CHECK},
        {"event": "reuse", "check": "numpy:never-offered"},
    )
    outcome = classify(
        stdout,
        "",
        exit_code=0,
        timed_out=False,
        elapsed=1.0,
        package_manager=None,
        keys={"numpy:other": "k1", CHECK: "k2"},
        reused={CHECK: kept},
    )
    by_name = {c.name: c for c in outcome.checks}
    assert by_name["import:numpy"].inputs is None
    assert (by_name["numpy:other"].inputs, by_name["numpy:other"].key) == (
        (("numpy", "2.0.2"),),
        "k1",
    )
    assert by_name[CHECK] is kept
    # a reuse the harness never offered is no pass
    assert by_name["numpy:never-offered"].verdict is CheckVerdict.RUNTIME_ERROR
    assert outcome.verdict is Verdict.RUNTIME_ERROR


def test_a_reused_failure_fails_the_combination_as_it_did(kept: Store) -> None:
    reuse = Reuse(kept, checks_dir=None)
    record(
        kept,
        make_target(),
        {"numpy": "2.0.2"},
        reuse,
        ran(CheckVerdict.RUNTIME_ERROR, numpy="2.0.2"),
    )
    taken = find(reuse, {"numpy": "2.0.2"})
    stdout = _events(
        {"event": "start", "check": "import:numpy", "kind": "import"},
        {"event": "result", "check": "import:numpy", "kind": "import", "verdict": "pass"},
        {"event": "reuse", "check": CHECK},
    )
    outcome = classify(
        stdout, "", exit_code=0, timed_out=False, elapsed=1.0, package_manager=None, reused=taken
    )
    assert (outcome.verdict, outcome.failed_check, outcome.error) == (
        Verdict.RUNTIME_ERROR,
        CHECK,
        "ValueError: no",
    )
    assert outcome.checks[-1].reused_from is not None


def test_a_rerun_that_disagrees_ends_reuse_under_that_key(kept: Store) -> None:
    reuse = Reuse(kept, checks_dir=None, verify=1.0)
    record(kept, make_target(), {"numpy": "2.0.2"}, reuse, ran(numpy="2.0.2"))
    reusable = find(reuse, {"numpy": "2.0.2"})
    assert reuse.to_verify(reusable) == {CHECK}  # all of them, at 1.0
    assert Reuse(kept, checks_dir=None).to_verify(reusable) == set()  # none by default

    same = ran(numpy="2.0.2")
    late = ran(CheckVerdict.TIMEOUT, numpy="2.0.2")  # a slow machine contradicts nothing
    assert reuse.verified(reusable, [same, late]) == []
    assert CHECK in find(reuse, {"numpy": "2.0.2"})

    (said,) = reuse.verified(reusable, [ran(CheckVerdict.RUNTIME_ERROR, numpy="2.0.2")])
    assert said.startswith(f"reuse disagreement: {CHECK} was pass in result ")
    assert find(reuse, {"numpy": "2.0.2"}) == {}


def test_a_wheel_built_from_its_sdist_keys_by_its_build(kept: Store) -> None:
    """lightgbm 4.5.0 built with one toolchain is not the same as built with another,
    nor as its wheel from the index."""
    reuse = Reuse(kept, checks_dir=None)
    installed = [canonicalize_name(n) for n in ("numpy", "lightgbm")]
    lightgbm = canonicalize_name("lightgbm")

    def key(built: dict[NormalizedName, str] | None) -> str:
        return reuse.keys(image_id=MUSL_ID, installed=installed, built=built)[CHECK]

    assert len({key(None), key({lightgbm: "a" * 64}), key({lightgbm: "b" * 64})}) == 3
    assert key({lightgbm: "a" * 64}) == key({lightgbm: "a" * 64})


def test_what_checks_imported_on_a_target_is_learned_with_its_latest_image(kept: Store) -> None:
    reuse = Reuse(kept, checks_dir=None)
    target = make_target()
    assert kept.learned_inputs(target.key) == (None, {})
    record(kept, target, {"numpy": "2.0.2"}, reuse, ran(numpy="2.0.2"), image_id=OTHER_ID)
    record(kept, target, {"numpy": "2.0.1"}, reuse, ran(numpy="2.0.1", scipy="1.14.1"))
    image_id, learned = kept.learned_inputs(target.key)
    assert image_id == MUSL_ID
    assert learned == {CHECK: frozenset({"numpy", "scipy"})}
    assert kept.learned_inputs("another-target") == (None, {})
