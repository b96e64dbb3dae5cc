"""How long source builds take, cold and cached, per toolchain.

For each package (default: scikit-learn and lightgbm, the two with no musllinux
wheel) on each image (default: local/musl-python:3.11, no compiler and no package
manager, so the PyPI toolchain), the latest release's sdist is built three times
through the harness:

  cold:      a fresh cache directory: the toolchain (PyPI's zig, cmake, ninja, meson,
             or the distro's packages) is installed and zig compiles its libc pieces;
  warm:      ``--rebuild`` with the toolchain kept: the build itself;
  cached:    nothing to build: the wheel comes from the build cache.

Each prints its wall time, the build's recorded duration and what the verdict says
(notes such as "built without OpenMP"). Too slow for CI (scikit-learn takes many
minutes on 2 cores): run by hand.

    python benchmarks/bench_build.py [--image REF ...] [--package NAME ...] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from packaging.utils import canonicalize_name

from compat.config import RunConfig, Timeouts
from compat.harness import make_pipeline
from compat.index.pypi import PyPIIndex
from compat.matrix import BuildPolicy
from compat.model import Combo, ComboResult
from compat.reporter import Reporter
from compat.resolve.candidates import CandidateSource, requested
from compat.resolve.resolver import Resolver
from compat.settings import NetworkSettings
from compat.targets.probe import probe_image

MUSL = "local/musl-python:3.11"
PACKAGES = ("scikit-learn", "lightgbm")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _combo(index: PyPIIndex, image: str, package: str, cache: Path) -> Combo:
    target = probe_image(image, name=image, cache_dir=cache / "targets")
    policy = BuildPolicy(no_binary=frozenset({canonicalize_name(package)}))
    combo = Resolver(CandidateSource(index, target, build=policy)).resolve([requested(package)])
    if not isinstance(combo, Combo):
        raise SystemExit(f"{package} does not resolve on {image}: {combo.explanation}")
    return combo


def _run(
    image: str, combo: Combo, cache: Path, network: NetworkSettings, *, rebuild: bool
) -> tuple[float, ComboResult]:
    target = probe_image(image, name=image, cache_dir=cache / "targets")
    config = RunConfig(backend="docker", rebuild=rebuild, timeouts=Timeouts(build=7200))
    start = time.monotonic()
    with make_pipeline(config, cache_dir=cache, network=network, reporter=Reporter()) as backend:
        (result,) = backend.run(target, [combo], on_result=lambda r: None, reporter=Reporter())
    return time.monotonic() - start, result


def _recorded(cache: Path, combo: Combo, package: str) -> float | None:
    for path in (cache / "builds" / combo.pin(package).sha256).glob("*.json"):
        return float(json.loads(path.read_text())["duration"])
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", action="append", help=f"default: {MUSL}")
    parser.add_argument("--package", action="append", help="default: scikit-learn, lightgbm")
    parser.add_argument("--keep", type=Path, help="cache directory to use and keep")
    args = parser.parse_args()
    network = NetworkSettings.from_env(os.environ)
    cache = args.keep or Path(tempfile.mkdtemp(prefix="compat-bench-build-"))
    rows = []
    try:
        with PyPIIndex(network, cache_dir=cache / "index") as index:
            for image in args.image or [MUSL]:
                for package in args.package or PACKAGES:
                    combo = _combo(index, image, package, cache)
                    version = combo.pin(package).version
                    for kind, rebuild in (("cold", False), ("warm", True), ("cached", False)):
                        log(f"{image}: {package} {version} ({kind})...")
                        took, result = _run(image, combo, cache, network, rebuild=rebuild)
                        said = "; ".join(result.notes) or result.error or ""
                        built = _recorded(cache, combo, package)
                        label = f"{package} {version}"
                        rows.append((image, label, kind, took, built, result.verdict.value, said))
                        log(f"  {took:.0f}s {result.verdict.value}")
    finally:
        if args.keep is None:
            shutil.rmtree(cache, ignore_errors=True)
    print(f"{'image':<28} {'package':<22} {'run':<7} {'wall':>7} {'build':>7}  verdict / notes")
    for image, package, kind, took, built, verdict, notes in rows:
        shown = f"{built:.0f}s" if built is not None else "-"
        print(f"{image:<28} {package:<22} {kind:<7} {took:>6.0f}s {shown:>7}  {verdict} {notes}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
