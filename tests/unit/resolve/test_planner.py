from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from packaging.utils import canonicalize_name

from compat.cli import cli
from compat.errors import MatrixError, OfflineCacheMiss
from compat.index.snapshot import SnapshotIndex
from compat.matrix import parse_matrix
from compat.resolve.candidates import CandidateSource
from compat.resolve.planner import Plan, Planner
from compat.targets.profiles import target_from_profile

DATA = Path(__file__).parents[2] / "data"
INDEX = SnapshotIndex(DATA / "index")
LAST_TWO_MINORS: dict[str, Any] = {"last-minors": 2}  # not a Python name


def plan_for(
    packages: dict[str, str], base: str = "debian-slim", python: str = "3.12", **top: object
) -> Plan:
    matrix = parse_matrix({"packages": packages, **top}, path="m.toml")
    target = target_from_profile(base, python=python)
    return Planner(CandidateSource(INDEX, target, matrix.build), matrix).plan(target)


def test_minor_strategy_takes_newest_patch_of_each_minor() -> None:
    plan = plan_for({"numpy": ">=2.0,<2.3"}, strategy="minor")
    assert [str(v) for v in plan.versions[canonicalize_name("numpy")]] == [
        "2.2.6",
        "2.1.3",
        "2.0.2",
    ]
    assert len(plan.combos) == 3


def test_infeasible_pairs_are_listed_with_the_reason() -> None:
    plan = plan_for(
        {"numpy": ">=1.26,<2.1", "scipy": ">=1.16"}, strategy="pairwise", **LAST_TWO_MINORS
    )
    infeasible = {(str(a[1]), str(b[1])) for a, b in (p.pair for p in plan.infeasible_pairs)}
    assert ("1.26.4", "1.18.1") in infeasible
    reason = next(p.explanation for p in plan.infeasible_pairs if str(p.pair[0][1]) == "1.26.4")
    assert "requires numpy" in reason
    for combo in plan.combos:
        assert combo.version_of("numpy").major == 2 or str(combo.version_of("scipy")) != "1.18.1"


def test_exhaustive_is_the_cartesian_product() -> None:
    plan = plan_for({"numpy": ">=2.1,<2.3", "pandas": ">=2.2,<3"}, strategy="exhaustive")
    assert len(plan.combos) + len(plan.conflicts) == 2 * 2


def test_oldest_takes_lowest_versions_that_resolve() -> None:
    plan = plan_for({"numpy": ">=2", "pandas": ">=2.2"}, strategy="oldest")
    (combo,) = plan.combos
    # pandas 2.2.0 and 2.2.1 declare numpy<2: the oldest that takes numpy 2 is 2.2.2
    assert str(combo.version_of("pandas")) == "2.2.2"
    assert str(combo.version_of("numpy")) == "2.0.0"


def test_no_wheel_package_is_reported_and_the_rest_planned() -> None:
    plan = plan_for(
        {"numpy": ">=2.2", "scikit-learn": ">=1.6"}, base="alpine", build="none", strategy="latest"
    )
    assert canonicalize_name("scikit-learn") in plan.unavailable
    assert "no musllinux wheel" in plan.unavailable[canonicalize_name("scikit-learn")]
    assert [c.requested for c in plan.combos] == [("numpy",)]


def test_alpine_plan_says_which_packages_need_a_source_build() -> None:
    plan = plan_for({"numpy": ">=2.2", "scikit-learn": ">=1.6"}, base="alpine", strategy="latest")
    assert list(plan.source_builds) == ["scikit-learn"]
    assert plan.combos[0].pin("numpy").kind == "wheel"


def test_unknown_project_and_empty_range_name_the_key() -> None:
    with pytest.raises(MatrixError) as info:
        plan_for({"numpy": "*", "not-a-real-project": "*"})
    assert info.value.key == "packages.not-a-real-project"
    with pytest.raises(MatrixError, match="no release of numpy matches >=99"):
        plan_for({"numpy": ">=99"})


def test_cli_plan_json_lists_combinations_with_pins() -> None:
    result = CliRunner().invoke(
        cli,
        [
            "--snapshot",
            str(DATA / "index"),
            "plan",
            "--base",
            "alpine",
            "--python",
            "3.12",
            "--matrix",
            "matrix/ml-stack.toml",
            "--strategy",
            "pairwise",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert len(data["combinations"]) >= 9  # at least |numpy| x |scipy| versions
    combo = data["combinations"][0]
    assert len(combo["id"]) == 12
    assert {"name", "version", "sha256", "kind"} <= set(combo["pins"][0])
    assert set(data["source_builds"]) == {"scikit-learn", "lightgbm"}
    # the check runs each combination is expected to execute, and in all
    runs = [c["check_runs"] for c in data["combinations"]]
    assert all(runs)
    assert data["check_runs"]["to_run"] == sum(runs)
    assert data["check_runs"]["reused"] > 0  # pairs share versions


def test_cli_plan_table_says_source_builds_plainly() -> None:
    result = CliRunner().invoke(
        cli,
        ["--snapshot", str(DATA / "index"), "plan", "--base", "alpine", "--strategy", "latest"],
    )
    assert result.exit_code == 0, result.output
    assert "needs a source build" in result.stdout
    assert "scikit-learn" in result.stdout


class _EmptyOfflineCache:
    def files(self, name: str) -> list[object]:
        raise OfflineCacheMiss([f"project listing {name}"])

    def metadata(self, file: object) -> object:
        raise AssertionError("not reached")

    def prefetch(self, files: object) -> None:
        pass


def test_offline_names_every_missing_listing_at_once() -> None:
    matrix = parse_matrix({"packages": {"numpy": "*", "pandas": "*"}}, path="m.toml")
    target = target_from_profile("alpine")
    planner = Planner(CandidateSource(_EmptyOfflineCache(), target), matrix)  # type: ignore[arg-type]
    with pytest.raises(OfflineCacheMiss) as info:
        planner.plan(target)
    assert info.value.missing == ["project listing numpy", "project listing pandas"]


@pytest.mark.slow
def test_bad_matrix_exits_2_with_file_key_and_problem_and_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[packages]\nnumpy = ">=1.26,<<3"\n')
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "compat",
            "--snapshot",
            str(DATA / "index"),
            "plan",
            "--matrix",
            str(bad),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert f"{bad}: packages.numpy: '>=1.26,<<3' is not a valid version specifier" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_piped_plan_is_one_line_per_combination_header_included() -> None:
    result = CliRunner().invoke(
        cli,
        ["--snapshot", str(DATA / "index"), "plan", "--base", "alpine", "--strategy", "pairwise"],
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    (at,) = [i for i, line in enumerate(lines) if line.startswith("id\t")]
    header = lines[at].split("\t")
    assert header[1:7] == ["numpy", "scipy", "scikit-learn", "pandas", "matplotlib", "lightgbm"]
    assert header[-1] == "known incompatible"
    rows = [line.split("\t") for line in lines[at + 1 :] if "\t" in line]
    assert rows
    assert all(len(row) == len(header) for row in rows)  # one line each, never wrapped
    assert "combinations of" in lines[at + 1 + len(rows)]
