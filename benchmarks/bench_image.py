"""How much a locked stack adds to its base image: a plain Dockerfile against compat's.

On local/debian-python:bookworm, for the latest known-good combination of the six
packages (lightgbm needs libgomp1 from apt), three images are built with the
engine's builder (no layer cache unless --layer-cache):

  (a) plain: ``FROM base; COPY requirements.txt; RUN apt-get update && apt-get
      install -y libgomp1 && python3 -m venv /v && /v/bin/pip install -r
      requirements.txt`` (the same pins);
  (b) compat: the lock's Dockerfile, pruned (tests, sources, pip), its bytecode
      compiled in the builder stage (the default);
  (c) compat without bytecode: the same with ``--no-bytecode``
      (``Prune(bytecode=True)``), to show what stripping bytecode saves in size and
      costs in start-up time (``compat image`` quotes both from one image too).

For each it prints the layers added over the base, their sum, the build time and
the smoke suite's verdict and wall time inside the image, then the ratio b/a
(target <= 0.5) and whether the suite passes in (b).

    python benchmarks/bench_image.py [--wheelhouse] [--layer-cache] [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compat.effects.container import connect, image_id
from compat.effects.http import http_client
from compat.effects.images import build
from compat.harness.classify import SuiteOutcome
from compat.harness.wheelhouse import FileRef, Wheelhouse
from compat.image import IMAGE_LABEL, Layer, build_image, measure, run_smoke
from compat.image.report import count_checks
from compat.index.pypi import PyPIIndex
from compat.lock import LockInput, Prune, write_lock
from compat.model import Combo, Verdict
from compat.resolve.candidates import CandidateSource, requested
from compat.resolve.resolver import Resolver
from compat.settings import NetworkSettings
from compat.targets.probe import probe_image
from compat.targets.target import PackageManager

BASE = "local/debian-python:bookworm"
SIX = ("numpy", "scipy", "scikit-learn", "pandas", "matplotlib", "lightgbm")
SYSTEM = ("libgomp1",)  # what lightgbm's wheel needs on a minimal Debian
MB = 1e6


@dataclass(frozen=True, kw_only=True, slots=True)
class Measured:
    name: str
    tag: str
    added: int
    layers: tuple[Layer, ...]
    build_seconds: float
    verdict: Verdict | None
    counts: dict[str, int]
    smoke_seconds: float
    error: str | None = None


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def latest_combo(network: NetworkSettings, cache: Path, client: Any) -> tuple[LockInput, Combo]:
    target = probe_image(BASE, name="bookworm", cache_dir=cache, client=client)
    with PyPIIndex(network, cache_dir=cache / "index") as index:
        combo = Resolver(CandidateSource(index, target)).resolve([requested(n) for n in SIX])
    if not isinstance(combo, Combo):
        raise SystemExit(f"the six packages do not resolve on {BASE}: {combo.explanation}")
    lock = LockInput(
        target=target, combo=combo, system_packages=SYSTEM, package_manager=PackageManager.APT
    )
    return lock, combo


def plain(client: Any, lock_dir: Path, tag: str, *, nocache: bool) -> float:
    """(a): the Dockerfile most people write first."""
    with tempfile.TemporaryDirectory(prefix="compat-bench-plain-") as tmp:
        context = Path(tmp)
        shutil.copyfile(lock_dir / "requirements.txt", context / "requirements.txt")
        (context / "Dockerfile").write_text(
            f"FROM {BASE}\n"
            "COPY requirements.txt /requirements.txt\n"
            f"RUN apt-get update && apt-get install -y {' '.join(SYSTEM)} "
            "&& python3 -m venv /v && /v/bin/pip install -r /requirements.txt\n"
        )
        start = time.monotonic()
        build(client, tag=tag, context=context, labels={IMAGE_LABEL: "1"}, nocache=nocache)
        return time.monotonic() - start


def smoke(client: Any, tag: str, lock: LockInput, venv: str) -> tuple[SuiteOutcome, float]:
    start = time.monotonic()
    outcome = run_smoke(
        client,
        tag,
        python=f"{venv}/bin/python",
        site=f"{venv}/lib/python{lock.target.python}/site-packages",
        packages=lock.combo.requested,
        package_manager=PackageManager.APT,
        libc=lock.target.libc.value,
    )
    return outcome, time.monotonic() - start


def show(m: Measured) -> None:
    print(f"\n{m.name} ({m.tag}): {m.added / MB:.1f} MB added over the base")
    for layer in m.layers:
        if layer.size:
            print(f"  {layer.size / MB:9.1f} MB  {layer.instruction[:110]}")
    counts = ", ".join(f"{k} {v}" for k, v in m.counts.items() if v)
    verdict = m.verdict.value if m.verdict else "not run"
    suite = f"smoke suite {verdict} ({counts}) in {m.smoke_seconds:.1f}s"
    print(f"  build {m.build_seconds:.1f}s; {suite}")
    if m.error:
        print(f"  error: {m.error}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--wheelhouse",
        action="store_true",
        help="build compat's images from the wheelhouse in the context (no download)",
    )
    parser.add_argument("--layer-cache", action="store_true", help="let builds reuse layers")
    parser.add_argument("--keep", action="store_true", help="keep the images built")
    parser.add_argument("--cache", type=Path, help="compat cache (default: a fresh one)")
    args = parser.parse_args(argv)

    network = NetworkSettings.from_env(os.environ)
    work = Path(tempfile.mkdtemp(prefix="compat-bench-image-"))
    cache = args.cache or work / "cache"
    client = connect(timeout=3600)
    run = time.strftime("%Y%m%d%H%M%S")
    tags: list[str] = []
    results: list[Measured] = []
    try:
        base_id = image_id(client, BASE)
        lock, combo = latest_combo(network, cache, client)
        log(f"{combo.label()} on {lock.target.describe()}, combination {combo.id}")
        if args.wheelhouse:
            refs = [FileRef(filename=p.filename, url=p.url, sha256=p.sha256) for p in combo.pins]
            with http_client(network) as http:
                _, failed = Wheelhouse(cache, http).fetch(refs)
            if failed:
                raise SystemExit(f"cannot fetch: {', '.join(str(e) for e in failed.values())}")

        lock_dir = work / "lock"
        write_lock(lock, lock_dir)
        tag = f"compat-bench/image-plain:{run}"
        tags.append(tag)
        log("building (a) plain")
        seconds = plain(client, lock_dir, tag, nocache=not args.layer_cache)
        sizes = measure(client, tag, base_id)
        outcome, smoke_seconds = smoke(client, tag, lock, "/v")
        results.append(
            Measured(
                name="(a) plain",
                tag=tag,
                added=sizes.added,
                layers=sizes.layers,
                build_seconds=seconds,
                verdict=outcome.verdict,
                counts=count_checks(outcome.checks),
                smoke_seconds=smoke_seconds,
                error=outcome.error,
            )
        )

        for name, prune in (
            ("(b) compat", Prune()),
            ("(c) compat, --no-bytecode", Prune(bytecode=True)),
        ):
            variant_dir = work / name.split()[0].strip("()")
            write_lock(lock, variant_dir, prune=prune)
            tag = f"compat-bench/image-{variant_dir.name}:{run}"
            tags.append(tag)
            log(f"building {name}")
            report = build_image(
                variant_dir,
                tag=tag,
                client=client,
                wheelhouse=cache if args.wheelhouse else None,
                nocache=not args.layer_cache,
            )
            results.append(
                Measured(
                    name=name,
                    tag=tag,
                    added=report.added_size,
                    layers=report.layers,
                    build_seconds=report.build_seconds,
                    verdict=report.verdict,
                    counts=report.counts,
                    smoke_seconds=report.smoke_seconds,
                    error=report.error,
                )
            )
    finally:
        if not args.keep:
            for tag in tags:
                try:
                    client.images.remove(tag, force=True)
                except Exception as exc:  # cleanup reports, never masks
                    log(f"could not remove {tag}: {exc}")
        client.close()
        if args.cache is None:
            shutil.rmtree(work, ignore_errors=True)

    for m in results:
        show(m)
    a, b, c = results
    ratio = b.added / a.added
    print(
        f"\ncompat adds {b.added / MB:.1f} MB, plain {a.added / MB:.1f} MB: "
        f"ratio {ratio:.2f} (target <= 0.50: {'met' if ratio <= 0.5 else 'NOT met'})"
    )
    print(
        f"without bytecode: {c.added / MB:.1f} MB (ratio {c.added / a.added:.2f}), smoke suite "
        f"{c.smoke_seconds:.1f}s instead of {b.smoke_seconds:.1f}s"
    )
    print(f"smoke suite in compat's image: {b.verdict.value if b.verdict else 'not run'}")
    return 0 if ratio <= 0.5 and b.verdict is Verdict.PASS else 1


if __name__ == "__main__":
    sys.exit(main())
