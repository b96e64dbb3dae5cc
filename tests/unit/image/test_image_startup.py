"""``compat image`` quotes how fast the image starts both ways: the requested
packages' import in a fresh interpreter with bytecode and without, and the image's
size with and without it, whichever way the image was built."""

from __future__ import annotations

import compileall
import json
import subprocess
import venv
from pathlib import Path

import pytest

from compat.errors import HarnessError
from compat.image.startup import _SCRIPT, Startup, describe

MB = 1_000_000


def _startup(*, in_image: bool, error: str | None = None) -> Startup:
    return Startup(
        modules=("numpy", "sklearn"),
        bytecode_in_image=in_image,
        bytecode_size=50 * MB,
        with_bytecode=None if error else 2.04,
        without_bytecode=None if error else 6.31,
        error=error,
    )


def test_an_image_with_bytecode_is_quoted_both_ways() -> None:
    lines = describe(_startup(in_image=True), 650 * MB)
    assert lines == [
        "import of numpy, sklearn in a fresh interpreter: 2.0 s with bytecode (this image), "
        "6.3 s without (--no-bytecode)",
        "image 650.0 MB with bytecode, 600.0 MB without (the bytecode: 50.0 MB)",
    ]


def test_an_image_built_without_bytecode_is_quoted_both_ways() -> None:
    lines = describe(_startup(in_image=False), 600 * MB)
    assert lines[0].endswith("2.0 s with bytecode, 6.3 s without (this image)")
    assert lines[1] == "image 650.0 MB with bytecode, 600.0 MB without (the bytecode: 50.0 MB)"


def test_a_failed_import_is_said_not_timed() -> None:
    failed = Startup.parse(json.dumps({"modules": ["numpy"], "error": "ImportError: x"}))
    assert (failed.with_bytecode, failed.without_bytecode) == (None, None)
    assert describe(failed, 600 * MB) == ["importing numpy failed: ImportError: x"]
    with pytest.raises(HarnessError, match="printed no result"):
        Startup.parse("Traceback ...\n")


def _site(root: Path) -> tuple[Path, Path]:
    """A venv holding one distribution ``heavy-lib`` whose module ``heavylib`` imports
    a good part of the standard library's pure-Python modules."""
    venv.EnvBuilder(with_pip=False).create(root)
    (site,) = root.glob("lib/python*/site-packages")
    (site / "heavylib").mkdir()
    body = "".join(f"def f{i}(x):\n    return [x * {i} for _ in range(3)]\n" for i in range(3000))
    (site / "heavylib" / "__init__.py").write_text("import json, email.parser\n" + body)
    info = site / "heavy_lib-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: heavy-lib\nVersion: 1.0\n")
    (info / "RECORD").write_text("heavylib/__init__.py,,\n")
    return root / "bin" / "python", site


def _measure(python: Path, site: Path) -> Startup:
    done = subprocess.run(
        [str(python), "-I", "-c", _SCRIPT, str(site), json.dumps(["heavy-lib"])],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return Startup.parse(done.stdout)


@pytest.mark.slow
def test_the_measurement_runs_both_ways_and_leaves_the_venv_alone(tmp_path: Path) -> None:
    python, site = _site(tmp_path / "venv")
    bare = _measure(python, site)
    assert bare.modules == ("heavylib",)  # the distribution's module, found by its name
    assert not bare.bytecode_in_image
    assert bare.bytecode_size > 0  # what compiling it adds, compiled elsewhere
    assert bare.with_bytecode is not None
    assert bare.without_bytecode is not None
    assert bare.with_bytecode < bare.without_bytecode  # 3000 functions to compile
    assert not list(site.rglob("__pycache__"))  # nothing written into the image's venv

    assert compileall.compile_dir(site, quiet=1)
    pyc = sum(f.stat().st_size for f in site.rglob("__pycache__/*"))
    compiled = _measure(python, site)
    assert compiled.bytecode_in_image
    assert compiled.bytecode_size == pyc
    assert compiled.with_bytecode is not None
    assert compiled.without_bytecode is not None
    assert compiled.with_bytecode < compiled.without_bytecode
