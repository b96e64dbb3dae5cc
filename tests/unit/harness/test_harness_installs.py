"""The wheelhouse (downloads checked against their hash) and the installs."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import httpx
import pytest

from compat.errors import FetchFailed, UnpackFailed
from compat.harness.installs import Installs
from compat.harness.wheelhouse import FileRef, Wheelhouse
from tests.helpers.harness import sha256_of, write_wheel


def _served(files: dict[str, bytes], seen: list[str]) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        body = files.get(request.url.path)
        return httpx.Response(200, content=body) if body is not None else httpx.Response(404)

    return httpx.Client(transport=httpx.MockTransport(handler))


def _ref(name: str, body: bytes, *, sha: str | None = None) -> FileRef:
    return FileRef(
        filename=name,
        url=f"https://files.example/{name}",
        sha256=sha or hashlib.sha256(body).hexdigest(),
    )


def _leftovers(root: Path) -> list[Path]:
    return list(root.rglob(".part-*"))


def test_fetch_stores_by_content_and_only_once(tmp_path: Path) -> None:
    body = b"wheel bytes"
    seen: list[str] = []
    house = Wheelhouse(tmp_path, _served({"/a-1.whl": body}, seen))
    ref = _ref("a-1.whl", body)
    got, failed = house.fetch([ref, ref])
    path = got[ref.sha256]
    assert path == tmp_path / "files" / ref.sha256[:2] / ref.sha256 / "a-1.whl"
    assert path.read_bytes() == body
    assert not failed
    house.fetch([ref])
    assert seen == ["/a-1.whl"]  # the second fetch found it on disk


def test_hash_mismatch_names_the_file_and_url_and_leaves_nothing(tmp_path: Path) -> None:
    seen: list[str] = []
    house = Wheelhouse(tmp_path, _served({"/evil-1.whl": b"tampered"}, seen))
    ref = _ref("evil-1.whl", b"original")
    with pytest.raises(FetchFailed) as info:
        house.fetch_one(ref)
    message = str(info.value)
    assert "evil-1.whl" in message
    assert "https://files.example/evil-1.whl" in message
    assert "sha256 mismatch" in message
    assert not house.has(ref.sha256, ref.filename)
    assert _leftovers(tmp_path) == []


def test_one_failure_does_not_stop_the_others(tmp_path: Path) -> None:
    seen: list[str] = []
    good = b"good"
    house = Wheelhouse(tmp_path, _served({"/good-1.whl": good}, seen), parallel=4)
    refs = [_ref("good-1.whl", good), _ref("missing-1.whl", b"x")]
    progress: list[tuple[int, int]] = []
    got, failed = house.fetch(refs, progress=lambda d, t: progress.append((d, t)))
    assert list(got) == [refs[0].sha256]
    assert failed[refs[1].sha256].reason == "HTTP 404"
    assert progress[-1] == (2, 2)
    assert _leftovers(tmp_path) == []


def test_add_keys_a_local_file_by_its_own_hash(tmp_path: Path) -> None:
    house = Wheelhouse(
        tmp_path / "cache",
        httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(500))),
    )
    wheel = write_wheel(tmp_path, "built", "2.0")
    sha, stored = house.add(wheel)
    assert sha == sha256_of(wheel)
    assert stored == house.path(sha, wheel.name)
    assert stored.read_bytes() == wheel.read_bytes()


def test_unpack_makes_a_site_dir(tmp_path: Path) -> None:
    wheel = write_wheel(
        tmp_path,
        "tiny-pkg",
        "1.0",
        {"tiny_pkg/__init__.py": "X = 1\n", "tiny_pkg/sub/mod.py": "Y = 2\n"},
    )
    store = Installs(tmp_path / "cache")
    sha = sha256_of(wheel)
    site = store.unpack(wheel, sha)
    assert site == tmp_path / "cache" / "installs" / sha
    assert (site / "tiny_pkg" / "sub" / "mod.py").read_text() == "Y = 2\n"
    assert (site / "tiny_pkg-1.0.dist-info" / "METADATA").is_file()
    assert not list(site.rglob("*.pyc"))  # bytecode is the target interpreter's job
    # a second unpack is a no-op
    (site / "marker").write_text("kept")
    assert store.unpack(wheel, sha) == site
    assert (site / "marker").exists()


def test_unpacked_dir_imports_through_addsitedir(tmp_path: Path) -> None:
    import subprocess
    import sys

    a = write_wheel(
        tmp_path, "alpha", "1.0", {"alpha/__init__.py": "from beta import B\nA = B + 1\n"}
    )
    b = write_wheel(tmp_path, "beta", "1.0", {"beta/__init__.py": "B = 41\n"})
    store = Installs(tmp_path / "cache")
    sites = [store.unpack(w, sha256_of(w)) for w in (a, b)]
    code = (
        "import site, sys\n"
        f"for d in {[str(s) for s in sites]!r}: site.addsitedir(d)\n"
        "import alpha, importlib.metadata as md\n"
        "print(alpha.A, md.version('beta'))\n"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["42", "1.0"]


def test_broken_wheel_is_unpack_failed_and_leaves_nothing(tmp_path: Path) -> None:
    wheel = tmp_path / "broken-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("broken/__init__.py", "")  # no dist-info at all
    store = Installs(tmp_path / "cache")
    with pytest.raises(UnpackFailed, match=r"broken-1\.0"):
        store.unpack(wheel, sha256_of(wheel))
    assert not store.has(sha256_of(wheel))
    assert [p.name for p in store.installs_dir.iterdir()] == []


def test_compile_stamps_are_per_interpreter(tmp_path: Path) -> None:
    store = Installs(tmp_path)
    assert store.needing_compile(["a", "b", "a"], "cpython-311-x") == ["a", "b"]
    store.mark_compiled(["a"], "cpython-311-x")
    assert store.needing_compile(["a", "b"], "cpython-311-x") == ["b"]
    assert store.needing_compile(["a"], "cpython-313-y") == ["a"]


def test_stray_bytecode_in_a_wheel_is_left_out_quietly(tmp_path: Path) -> None:
    wheel = write_wheel(
        tmp_path,
        "stray",
        "1.0",
        {"stray/__init__.py": "", "stray/__pycache__/__init__.cpython-311.pyc": "junk"},
    )
    store = Installs(tmp_path / "cache")
    site = store.unpack(wheel, sha256_of(wheel))  # warnings are errors in this suite
    assert (site / "stray" / "__init__.py").is_file()
    assert not (site / "stray" / "__pycache__").exists()


def test_many_wheels_unpack_in_parallel(tmp_path: Path) -> None:
    from compat.config import RunConfig
    from compat.harness.pipeline import Pipeline
    from tests.helpers.harness import FakeBackend, exec_result

    wheels = {}
    for i in range(12):
        w = write_wheel(tmp_path, f"p{i}", "1.0")
        wheels[sha256_of(w)] = w
    broken = tmp_path / "broken-1.0-py3-none-any.whl"
    broken.write_bytes(b"not a zip")
    wheels[sha256_of(broken)] = broken
    pipeline = Pipeline(
        FakeBackend(lambda argv: exec_result("")), RunConfig(), cache_dir=tmp_path / "c"
    )
    seen: list[tuple[str, int, int]] = []
    failed = pipeline._unpack(wheels, lambda s, d, t: seen.append((s, d, t)))
    assert list(failed) == [sha256_of(broken)]
    assert seen[-1] == ("unpack", 13, 13)
    assert all(pipeline.installs.has(sha) for sha in wheels if sha not in failed)


def test_make_wheel_is_a_zip(tmp_path: Path) -> None:
    wheel = write_wheel(tmp_path, "tiny", "1.0")
    with zipfile.ZipFile(wheel) as zf:
        assert "tiny-1.0.dist-info/RECORD" in zf.namelist()
