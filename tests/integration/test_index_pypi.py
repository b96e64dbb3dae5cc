"""The index client against the real index (PyPI, or PIP_INDEX_URL with its CA bundle)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name
from packaging.version import Version

from compat.errors import OfflineCacheMiss
from compat.index.pypi import PyPIIndex
from compat.model import FileKind
from compat.settings import NetworkSettings

SIX = canonicalize_name("six")


def test_files_and_metadata_of_a_small_real_project(tmp_path: Path) -> None:
    settings = NetworkSettings.from_env(os.environ)
    with PyPIIndex(settings, cache_dir=tmp_path) as index:
        files = index.files(SIX)
        assert Version("1.16.0") in index.versions(SIX)
        wheel = next(f for f in files if f.filename == "six-1.16.0-py2.py3-none-any.whl")
        sdist = next(f for f in files if f.filename == "six-1.16.0.tar.gz")
        assert wheel.sha256 == "8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254"
        assert sdist.kind is FileKind.SDIST
        index.prefetch([wheel, sdist])
        for file in (wheel, sdist):
            meta = index.metadata(file)
            assert meta.name == "six"
            assert meta.version == Version("1.16.0")
            assert meta.requires_dist == ()
            assert str(meta.requires_python) == "!=3.0.*,!=3.1.*,!=3.2.*,>=2.7"
        assert index.requests >= 3

    # a second run within the TTL is served by the cache alone
    with PyPIIndex(settings, cache_dir=tmp_path) as warm:
        assert warm.files(SIX) == files
        assert warm.metadata(wheel) == meta
        assert warm.requests == 0
    with PyPIIndex(settings, cache_dir=tmp_path, offline=True) as offline:
        assert offline.files(SIX) == files
        assert offline.metadata(sdist) == meta
        with pytest.raises(OfflineCacheMiss, match=re.escape("metadata of file six-1.17.0.tar.gz")):
            offline.metadata(next(f for f in files if f.filename == "six-1.17.0.tar.gz"))


def test_dependencies_read_from_a_real_wheel() -> None:
    settings = NetworkSettings.from_env(os.environ)
    with PyPIIndex(settings) as index:
        files = index.files(canonicalize_name("python-dateutil"))
        wheel = next(
            f for f in files if f.filename == "python_dateutil-2.9.0.post0-py2.py3-none-any.whl"
        )
        meta = index.metadata(wheel)
        assert [str(r) for r in meta.requires_dist] == ["six>=1.5"]
