"""SnapshotIndex: recording round trip, and the recorded ML stack other tests load."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from compat.errors import MetadataNotRecorded, ProjectNotFound
from compat.index import Index, SnapshotIndex, record_snapshot
from compat.model import DistFile, FileKind
from tests.helpers.index import DATA, FakeIndex, metadata_text, sdist_bytes, wheel_bytes

DEMO = canonicalize_name("demo")
STACK = ["numpy", "scipy", "scikit-learn", "pandas", "matplotlib", "lightgbm"]


@pytest.fixture
def fake() -> FakeIndex:
    fake = FakeIndex()
    for version, deps in (("1.0", ["numpy<2"]), ("2.0", ["numpy>=2", 'pytest; extra == "test"'])):
        text = metadata_text("demo", version, *deps, python=">=3.10")
        for tag in ("cp312-cp312-manylinux_2_17_x86_64", "cp312-cp312-win_amd64"):
            wheel = wheel_bytes("demo", version, text + tag)  # distinct content per file
            fake.add("demo", f"demo-{version}-{tag}.whl", wheel)
        fake.add("demo", f"demo-{version}.tar.gz", sdist_bytes("demo", version, text))
    fake.add("demo", "demo-0.1.tar.gz", sdist_bytes("demo", "0.1", metadata_text("demo", "0.1")))
    return fake


def test_record_and_load_round_trip(fake: FakeIndex, tmp_path: Path) -> None:
    live = fake.index()

    def no_windows(file: DistFile) -> bool:
        return not any("win" in t.platform for t in file.tags)

    recorded = record_snapshot(
        live,
        ["Demo"],
        tmp_path,
        keep_version=lambda _name, version: version >= Version("1.0"),
        keep_file=no_windows,
    )
    assert set(recorded[DEMO]) == {Version("1.0"), Version("2.0")}
    # metadata came from one wheel per release, never from the sdists
    assert len(fake.file_requests()) == 2
    assert not [r for r in fake.file_requests() if r.url.path.endswith(".tar.gz")]
    snapshot: Index = SnapshotIndex(tmp_path)
    files = snapshot.files(DEMO)
    assert [f.filename for f in files] == [
        "demo-1.0-cp312-cp312-manylinux_2_17_x86_64.whl",
        "demo-1.0.tar.gz",
        "demo-2.0-cp312-cp312-manylinux_2_17_x86_64.whl",
        "demo-2.0.tar.gz",
    ]
    live_files = {f.filename: f for f in live.files(DEMO)}
    assert all(f == live_files[f.filename] for f in files)
    for file in files:
        assert snapshot.metadata(file) == live.metadata(live_files[file.filename])
    sdist = files[3]
    assert sdist.kind is FileKind.SDIST
    assert snapshot.metadata(sdist).requires_dist == (
        Requirement("numpy>=2"),
        Requirement('pytest; extra == "test"'),
    )


def test_unrecorded_metadata_and_projects_are_clear_errors() -> None:
    snapshot = SnapshotIndex(DATA)
    with pytest.raises(ProjectNotFound, match="the snapshot in"):
        snapshot.files(canonicalize_name("not-recorded"))
    [numpy_file, *_] = snapshot.files(canonicalize_name("numpy"))
    unrecorded = replace(numpy_file, version=Version("0.1"))
    with pytest.raises(MetadataNotRecorded, match=r"numpy 0\.1"):
        snapshot.metadata(unrecorded)


def test_the_recorded_stack_is_complete() -> None:
    snapshot = SnapshotIndex(DATA)
    projects = snapshot.projects()
    for name in STACK:
        assert name in projects
    for name in projects:
        files = snapshot.files(name)
        assert files, name
        for version in snapshot.versions(name, include_yanked=True):
            release = [f for f in files if f.version == version]
            meta = snapshot.metadata(release[0])
            assert meta.version == version
            # every dependency a target needs is recorded too
            for requirement in meta.requires_dist:
                if requirement.marker is None:
                    assert canonicalize_name(requirement.name) in projects, (name, requirement)
    numpy = snapshot.files(canonicalize_name("numpy"))
    assert min(f.version for f in numpy) == Version("1.26.0")
    platforms = {t.platform for f in numpy for t in f.tags}
    assert all(("linux" in p and "x86_64" in p) or p == "any" for p in platforms)
    interpreters = {t.interpreter for f in numpy for t in f.tags}
    assert interpreters <= {"cp311", "cp312", "cp313"}
    assert any(f.yanked for f in numpy)


def test_prefetch_is_a_no_op() -> None:
    snapshot = SnapshotIndex(DATA)
    files = snapshot.files(canonicalize_name("six"))
    snapshot.prefetch(files)
    assert snapshot.metadata(files[0]).name == "six"
