"""Whole-package imports kept by their inputs and reused: what a key holds,
which kept outcome a combination may take, and how it joins the import check."""

from __future__ import annotations

import json
from pathlib import Path

from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from compat.harness.classify import classify
from compat.harness.sweeps import SweepCache, SweepRecord
from compat.model import CheckKind, CheckResult, CheckVerdict, FileKind, Pin, Verdict

STATSMODELS = Pin(
    name=canonicalize_name("statsmodels"),
    version=Version("0.14.1"),
    filename="statsmodels-0.14.1-cp311-cp311-manylinux_2_17_x86_64.whl",
    url="https://files.example/statsmodels.whl",
    sha256="a" * 64,
    kind=FileKind.WHEEL,
)
INSTALLED = [canonicalize_name(n) for n in ("numpy", "pandas", "scipy", "statsmodels")]
ABI = "statsmodels.api: ValueError: numpy.dtype size changed (partner: numpy 2.0.2)"


def record(verdict: str = "import-error", numpy: str = "2.0.2") -> SweepRecord:
    return SweepRecord.from_event(
        {
            "event": "sweep",
            "dist": "statsmodels",
            "verdict": verdict,
            "error": ABI if verdict != "pass" else None,
            "inputs": {"numpy": numpy, "statsmodels": "0.14.1"},
            "summary": f"statsmodels 0.14.1: 534 modules ...\nfailed: {ABI}",
        }
    )


def versions(numpy: str) -> dict[NormalizedName, Version]:
    return {
        canonicalize_name("numpy"): Version(numpy),
        canonicalize_name("pandas"): Version("2.2.3"),
        canonicalize_name("scipy"): Version("1.14.1"),
        canonicalize_name("statsmodels"): Version("0.14.1"),
    }


def test_a_kept_import_is_found_only_where_its_inputs_hold(tmp_path: Path) -> None:
    cache = SweepCache(tmp_path)
    key = cache.key(image_id="sha256:img", pin=STATSMODELS, installed=INSTALLED)
    assert cache.find(key, versions("2.0.2")) is None
    cache.keep(key, record("pass"))
    assert cache.find(key, versions("2.0.2")) == record("pass")
    # another numpy: the modules loaded another input
    assert cache.find(key, versions("1.26.4")) is None
    cache.keep(key, record("pass", numpy="1.26.4"))
    assert cache.find(key, versions("1.26.4")) == record("pass", numpy="1.26.4")
    assert cache.find(key, versions("2.0.2")) == record("pass")  # both kept under one key
    # another image, another set of installed distributions: other keys
    assert key != cache.key(image_id="sha256:other", pin=STATSMODELS, installed=INSTALLED)
    more = [*INSTALLED, canonicalize_name("matplotlib")]
    assert key != cache.key(image_id="sha256:img", pin=STATSMODELS, installed=more)


def test_failures_are_not_kept_and_a_damaged_file_is_none_kept(tmp_path: Path) -> None:
    cache = SweepCache(tmp_path)
    key = cache.key(image_id="sha256:img", pin=STATSMODELS, installed=INSTALLED)
    # a failed import leaves sys.modules: its inputs can miss what failed
    for verdict in ("crash", "import-error"):
        cache.keep(key, record(verdict))
        assert cache.find(key, versions("2.0.2")) is None
    (tmp_path / "sweeps").mkdir(exist_ok=True)
    (tmp_path / "sweeps" / f"{key}.json").write_text("[{truncated")
    assert cache.find(key, versions("2.0.2")) is None
    cache.keep(key, record("pass"))
    assert json.loads((tmp_path / "sweeps" / f"{key}.json").read_text())[0]["verdict"] == "pass"


def _runner_output(*events: dict[str, object]) -> str:
    return "\n".join(json.dumps(e) for e in events)


def test_classify_joins_a_kept_import_to_the_check_and_reads_fresh_ones() -> None:
    stdout = _runner_output(
        {"event": "start", "check": "import:statsmodels", "kind": "import"},
        {"event": "result", "check": "import:statsmodels", "kind": "import", "verdict": "pass",
         "duration": 0.5, "error": None, "log": "statsmodels 0.14.1 in /site"},
        {"event": "start", "check": "import:scipy", "kind": "import"},
        {"event": "sweep", "dist": "scipy", "version": "1.14.1", "verdict": "pass",
         "error": None, "inputs": {"numpy": "2.0.2", "scipy": "1.14.1"}, "summary": "ok"},
        {"event": "result", "check": "import:scipy", "kind": "import", "verdict": "pass",
         "duration": 0.5, "error": None, "log": ""},
        {"event": "done", "counts": {}, "duration": 1.0},
    )  # fmt: skip
    outcome = classify(
        stdout,
        "",
        exit_code=0,
        timed_out=False,
        elapsed=1.0,
        package_manager=None,
        kept_sweeps={canonicalize_name("statsmodels"): record()},
    )
    assert outcome.verdict is Verdict.IMPORT_ERROR
    assert outcome.failed_check == "import:statsmodels"
    assert outcome.error == ABI
    (check,) = [c for c in outcome.checks if c.name == "import:statsmodels"]
    assert "reused from an earlier run with the same inputs (numpy 2.0.2, statsmodels 0.14.1)" in (
        check.log
    )
    # the import check's inputs are its whole-package import's (and key its reuse)
    assert check.inputs == (("numpy", "2.0.2"), ("statsmodels", "0.14.1"))
    assert [r.dist for r in outcome.sweeps] == ["scipy"]


def test_a_failed_top_level_import_keeps_its_own_error() -> None:
    failed = CheckResult(
        name="import:statsmodels",
        kind=CheckKind.IMPORT,
        verdict=CheckVerdict.IMPORT_ERROR,
        duration=0.1,
        error="ImportError: libfoo.so.1: cannot open shared object file",
    )
    joined = record().applied_to(failed)
    assert joined.error == failed.error
    assert "failed: statsmodels.api" in joined.log
