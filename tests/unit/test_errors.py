"""The one exit-code table: each code means one thing, and every error kind has one."""

from __future__ import annotations

import inspect

import pytest

import compat.errors as errors
from compat.config import RunConfig
from compat.effects.container import check_reference
from compat.errors import CompatError, ExitCode, UsageError


def _error_kinds() -> list[type[CompatError]]:
    return [
        obj
        for _, obj in inspect.getmembers(errors, inspect.isclass)
        if issubclass(obj, CompatError)
    ]


def test_no_two_names_share_a_code() -> None:
    # an IntEnum silently turns a repeated value into an alias of the first name
    assert len(ExitCode.__members__) == len(ExitCode)


def test_every_error_kind_takes_its_code_from_the_table() -> None:
    for kind in _error_kinds():
        assert isinstance(kind.exit_code, ExitCode), kind


def test_engine_and_image_problems_have_different_codes() -> None:
    assert errors.EngineUnavailable.exit_code is ExitCode.NO_ENGINE
    assert errors.ImageUnavailable.exit_code is ExitCode.IMAGE_UNAVAILABLE


def test_a_misspelled_package_is_a_usage_error_not_an_outage() -> None:
    exc = errors.ProjectNotFound("nunpy", "https://pypi.org/simple/")
    assert isinstance(exc, UsageError)
    assert exc.exit_code == 2
    assert not isinstance(exc, errors.IndexUnavailable)


@pytest.mark.parametrize("memory", ["lots", "4 g", "g", "-1g", "4t"])
def test_a_malformed_memory_limit_is_a_usage_error(memory: str) -> None:
    with pytest.raises(UsageError, match=f"--memory {memory}"):
        RunConfig(memory=memory)


@pytest.mark.parametrize("memory", ["4g", "512m", "1.5G", "2gb", "1073741824", None])
def test_memory_limits_the_engine_accepts(memory: str | None) -> None:
    assert RunConfig(memory=memory).memory == memory


@pytest.mark.parametrize(
    "image",
    [
        "ubuntu",
        "python:3.12-slim",
        "local/debian-python:bookworm",
        "localhost:5000/team/base:1.0",
        "ghcr.io/org/img@sha256:" + "a" * 64,
        "sha256:" + "b" * 64,
        "0123456789ab",
    ],
)
def test_well_formed_image_references(image: str) -> None:
    assert check_reference(image) == image


@pytest.mark.parametrize("image", ["Ubuntu", "python:", "a b", "foo::1", "-x", "", "x/"])
def test_a_malformed_image_reference_is_a_usage_error(image: str) -> None:
    with pytest.raises(UsageError, match="not an image reference") as raised:
        check_reference(image)
    assert raised.value.exit_code == 2
