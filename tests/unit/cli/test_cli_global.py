"""Global options after the subcommand, --quiet, and the cache commands."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from compat.cli import cli
from compat.cli.main import hoist_globals
from compat.errors import UsageError
from compat.store import Store, sqlite_url
from compat.workflows.cache import parse_size, prune, usage
from tests.helpers.report_db import populate


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["results", "--db", "X", "--json"], ["--db", "X", "results", "--json"]),
        (["results", "--db=X"], ["--db=X", "results"]),
        (["-v", "scan", "-q", "--base", "alpine"], ["-v", "-q", "scan", "--base", "alpine"]),
        (["scan", "-h"], ["scan", "-h"]),
        (["check", "--exec", "--", "x", "--db", "y"], ["check", "--exec", "--", "x", "--db", "y"]),
    ],
)
def test_global_options_move_in_front_of_the_subcommand(
    args: list[str], expected: list[str]
) -> None:
    assert hoist_globals(cli, args) == expected


def test_a_global_option_after_the_subcommand_is_honoured(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "r.db")
    with Store.open(url) as store:
        populate(store)
    done = CliRunner().invoke(cli, ["results", "--db", url, "--limit", "1"])
    assert done.exit_code == 0, done.output
    assert "debian-slim" in done.output


def cache_tree(root: Path) -> None:
    for folder, size in (("installs/old", 3000), ("installs/new", 2000), ("files/ab", 500)):
        (root / folder).mkdir(parents=True)
        (root / folder / "f").write_bytes(b"x" * size)
    old = time.time() - 30 * 86_400
    os.utime(root / "installs" / "old", (old, old))


def test_usage_lists_each_folder_largest_first(tmp_path: Path) -> None:
    cache_tree(tmp_path)
    assert [(u.name, u.size, u.files) for u in usage(tmp_path)] == [
        ("installs", 5000, 2),
        ("files", 500, 1),
    ]
    assert usage(tmp_path / "missing") == []


def test_prune_removes_old_installs_only_unless_everything(tmp_path: Path) -> None:
    cache_tree(tmp_path)
    assert prune(tmp_path, older_than_days=14) == 3000
    assert sorted(p.name for p in (tmp_path / "installs").iterdir()) == ["new"]
    assert (tmp_path / "files" / "ab" / "f").exists()
    assert prune(tmp_path) == 2000
    assert prune(tmp_path, everything=True) == 500
    assert not tmp_path.exists()
    with pytest.raises(UsageError):
        prune(tmp_path, older_than_days=-1)


def test_cache_commands(tmp_path: Path) -> None:
    cache_tree(tmp_path)
    runner = CliRunner()
    info = runner.invoke(cli, ["cache", "info", "--cache-dir", str(tmp_path)])
    assert info.exit_code == 0, info.output
    assert "installs" in info.output
    assert "5 kB  2 files" in info.output
    pruned = runner.invoke(cli, ["--cache-dir", str(tmp_path), "cache", "prune"])
    assert pruned.exit_code == 0, pruned.output
    assert "freed 5 kB" in pruned.output
    assert not (tmp_path / "installs" / "new").exists()
    quiet = runner.invoke(
        cli, ["cache", "prune", "-q", "--everything", "--cache-dir", str(tmp_path)]
    )
    assert quiet.exit_code == 0, quiet.output
    assert quiet.output == ""
    assert not tmp_path.exists()


def test_a_command_that_fills_the_cache_says_when_it_is_past_its_limit(tmp_path: Path) -> None:
    cache_tree(tmp_path)  # 5.5 kB, 5 kB of it unpacked installs
    runner = CliRunner()
    args = ["--cache-dir", str(tmp_path), "lock", "--image", "local/none:1", "--db", "sqlite://"]
    full = runner.invoke(cli, args, env={"COMPAT_CACHE_LIMIT": "4k"})
    assert full.exit_code != 0  # nothing to lock: the warning comes whatever the ending
    said = " ".join(full.output.split())
    assert "the cache holds 5.5 kB" in said
    assert "over its limit of 4 kB (COMPAT_CACHE_LIMIT): `compat cache prune` frees 5 kB" in said
    roomy = runner.invoke(cli, args, env={"COMPAT_CACHE_LIMIT": "1m"})
    assert "the cache holds" not in roomy.output
    listing = runner.invoke(
        cli, ["--cache-dir", str(tmp_path), "cache", "info"], env={"COMPAT_CACHE_LIMIT": "4k"}
    )
    assert "the cache holds" not in listing.output  # only commands that fill it say so
    bad = runner.invoke(cli, args, env={"COMPAT_CACHE_LIMIT": "lots"})
    assert isinstance(bad.exception, UsageError)  # exit 2 through compat's main
    assert "COMPAT_CACHE_LIMIT=lots: give a size such as 20g or 500m" in str(bad.exception)
    assert [parse_size(t) for t in ("20g", "500MB", "1.5t", "4096")] == [
        20 * 1000**3,
        500 * 1000**2,
        1500 * 1000**3,
        4096,
    ]
