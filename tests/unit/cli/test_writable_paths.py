"""Unwritable outputs fail before the work starts, saying which option to change."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from compat.cli import cli
from compat.effects.paths import check_writable_dir, check_writable_file
from compat.errors import UsageError


def test_a_folder_that_cannot_be_made_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UsageError, match=r"cannot write the cache in .*file/c: .*--cache-dir"):
        check_writable_dir(blocker / "c", what="cache", option="--cache-dir")
    check_writable_dir(tmp_path / "new" / "dir", what="cache", option="--cache-dir")
    assert (tmp_path / "new" / "dir").is_dir()
    assert list((tmp_path / "new" / "dir").iterdir()) == []  # the probe file is gone


def test_a_report_path_that_is_a_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="is a directory"):
        check_writable_file(tmp_path, what="JUnit report", option="--junit")


def test_scan_refuses_an_unwritable_junit_path_before_planning(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    done = CliRunner().invoke(cli, ["scan", "--junit", str(blocker / "junit.xml")])
    assert isinstance(done.exception, UsageError), done.output
    assert "--junit" in str(done.exception)
