"""How long the deep tier takes on the latest six-package stack on bookworm.

Resolves the latest numpy, scipy, pandas, matplotlib, scikit-learn and lightgbm
for ``local/debian-python:bookworm`` (or ``--image``) and runs the deep tier
(``compat.deep.step.deepen``) on it twice against one fresh results
database, after an untimed smoke run whose result (and the system packages it
needed) the deep tier starts from, as in a scan (the smoke suite's time is
bench_smoke's to measure; the deep tier's cost is what is measured here):

  cold: no deep outcome cached (the installs and wheelhouse may be warm
        from earlier runs, as they are for any user after the first scan);
  warm: the same again: the combination's own run and every baseline outcome
        are now in the database, so no test runs.

For each it prints the wall time, the verdict, and per dependent the tests run,
the regressions, and the failing tests discarded as not attributed or flaky.
Targets on 2 cores: cold <= 10 min, warm <= 3 min.

    python benchmarks/bench_deep.py [--image REF] [--keep DIR] [--max-modules N] [PINS...]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import platformdirs
from packaging.requirements import Requirement

from compat.config import DeepSelection, RunConfig
from compat.deep.running import deep_runner
from compat.deep.step import deepen
from compat.harness import make_pipeline
from compat.index.pypi import PyPIIndex
from compat.model import Combo, ComboResult
from compat.reporter import Reporter
from compat.resolve.candidates import CandidateSource
from compat.settings import NetworkSettings
from compat.store import Store
from compat.targets.probe import probe_image
from compat.workflows.check import resolve_check

LATEST = ("numpy", "scipy", "pandas", "matplotlib", "scikit-learn", "lightgbm")


class Printer(Reporter):
    def notice(self, message: str) -> None:
        print(f"  {message}", flush=True)

    warning = notice


_NOTE = re.compile(
    r"(?P<tests>\d+) tests in \d+ modules; (?P<regressions>\d+) regressions, "
    r"(?P<unattributed>\d+) not attributed, (?P<flaky>\d+) flaky"
)


def counts(result: ComboResult) -> dict[str, int]:
    """Totals over the ``deep: <dependent>: ...`` notes."""
    totals = {"tests": 0, "regressions": 0, "unattributed": 0, "flaky": 0}
    for note in result.notes:
        found = _NOTE.search(note)
        if found:
            for key, value in found.groupdict().items():
                totals[key] += int(value)
    return totals


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pins", nargs="*", default=list(LATEST))
    parser.add_argument("--image", default="local/debian-python:bookworm")
    parser.add_argument("--keep", type=Path, help="keep the results database in DIR")
    parser.add_argument("--max-modules", type=int, default=DeepSelection().max_modules)
    args = parser.parse_args()
    where = args.keep or Path(tempfile.mkdtemp(prefix="bench-deep-"))
    where.mkdir(parents=True, exist_ok=True)
    db = where / "results.db"
    db.unlink(missing_ok=True)

    cache = Path(os.environ.get("COMPAT_CACHE_DIR") or platformdirs.user_cache_dir("compat"))
    network = NetworkSettings.from_env(os.environ)
    target = probe_image(args.image, name=args.image, cache_dir=cache)
    reporter = Printer()
    config = RunConfig(backend="docker", deep=DeepSelection(max_modules=args.max_modules))
    with (
        PyPIIndex(network, cache_dir=cache / "index", offline=False) as index,
        Store.open(f"sqlite:///{db}") as store,
        make_pipeline(config, cache_dir=cache, network=network, reporter=reporter) as pipeline,
    ):
        here = resolve_check(
            CandidateSource(index, target), [Requirement(p) for p in args.pins], force=False
        )
        assert isinstance(here, Combo), here
        print(f"{here.label()} on {target.describe()}")
        # the smoke run, untimed: the deep tier starts from its result, with the
        # system packages it found missing (libgomp1 for lightgbm on bookworm)
        (smoked,) = pipeline.run(target, [here], on_result=lambda _: None, reporter=reporter)
        print(f"smoke: {smoked.verdict.value}; system packages: {smoked.added_system_deps}")
        for label in ("cold", "warm"):
            started = time.monotonic()
            result = deepen(
                smoked,
                target=target,
                pipeline=deep_runner(pipeline),
                store=store,
                index=index,
                reporter=reporter,
                config=config,
            )
            elapsed = time.monotonic() - started
            total = counts(result)
            print(
                f"{label}: {elapsed / 60:.1f} min ({elapsed:.0f} s), load average "
                f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}, verdict {result.verdict.value}"
                + (f" ({result.failed_check}: {result.error})" if result.failed_check else "")
            )
            print(
                f"  {total['tests']} tests, {total['regressions']} regressions; discarded: "
                f"{total['unattributed']} not attributed, {total['flaky']} flaky",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
