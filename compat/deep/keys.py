"""What the deep tier's runs are cached under in the results database: a
combination's own run (``deep_runs``), a baseline's test modules and a baseline's
whole-package import (``deep_baselines``)."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping, Sequence

from packaging.utils import NormalizedName

from compat.config import RunConfig, Timeouts
from compat.deep.baseline import Baseline
from compat.deep.outcomes import DeepRun, TestOutcome
from compat.model import Combo
from compat.smoke import SMOKE_DIR
from compat.smoke.deep import DEEP_DIR


@functools.cache
def _runner_digest() -> str:
    """The deep runner's code: another selection or runner decides other outcomes
    (read once: every run key and module context of the process names it)."""
    digest = hashlib.sha256()
    for path in sorted(DEEP_DIR.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def settings_key(config: RunConfig) -> str:
    """The deep tier's settings as its run key has always spelt them (a key that
    keeps its text keeps the runs cached under it); a module's time limit, settable
    later, counts only when it is not the default."""
    deep, timeouts = config.deep, config.timeouts
    module = timeouts.deep_module
    return (
        f"DeepSettings(max_modules={deep.max_modules!r}, "
        f"max_foundation_modules={deep.max_foundation_modules!r}, "
        f"timeout={timeouts.deep_run!r}, modules={deep.modules!r}, "
        f"keyword={deep.keyword!r}, test_timeout={timeouts.deep_test!r}"
        + (f", module_timeout={module!r})" if module != Timeouts().deep_module else ")")
    )


def run_key(here: Combo, *, image_id: str, test_layer: Combo, config: RunConfig) -> str:
    """What a combination's own deep run is cached under: its pins (file hashes
    included), the image, the test layer, the selection settings and the runner
    code, so a warm rerun of the same question costs no test run."""
    digest = hashlib.sha256(b"deep-run\n")
    for part in (here.id, image_id, test_layer.id, settings_key(config), _runner_digest()):
        digest.update(part.encode() + b"\n")
    for pin in here.pins:
        digest.update(f"{pin.name}=={pin.version} {pin.sha256}\n".encode())
    return digest.hexdigest()[:24]


def module_context(here: Combo, *, image_id: str, test_layer: Combo, config: RunConfig) -> str:
    """Where a test module's outcome holds for other combinations (``deep_modules``):
    the image, the test layer, the selection settings, the runner code and the names
    of every distribution installed (being there can change a test, imported or
    not); the versions the module imported are its inputs (``module_inputs``)."""
    digest = hashlib.sha256(b"deep-module\n")
    names = ",".join(sorted(p.name for p in here.pins))
    for part in (image_id, test_layer.id, settings_key(config), _runner_digest(), names):
        digest.update(part.encode() + b"\n")
    return digest.hexdigest()[:24]


def pin_identity(here: Combo) -> dict[str, str]:
    """Each pin of ``here`` as a module's inputs name it: its version and its file
    (a wheel built here from an sdist is its own file)."""
    return {p.name: f"{p.version} {p.sha256}" for p in here.pins}


def module_inputs(here: Combo, imports: Sequence[str], owners: Mapping[str, str]) -> dict[str, str]:
    """What a test module of ``here`` depended on: the identity of each pin owning a
    top-level name its processes loaded or tried to import (the test layer owns
    none: it is in the context)."""
    pins = pin_identity(here)
    return {
        name: pins[name]
        for name in sorted({owners[top] for top in imports if top in owners})
        if name in pins
    }


def baseline_run(dependent: NormalizedName, cached: dict[str, list[dict[str, object]]]) -> DeepRun:
    """A baseline's cached outcomes (module -> its tests' as JSON) of ``dependent``'s
    tests, as a run."""
    outcomes = tuple(TestOutcome.from_json(o) for module in sorted(cached) for o in cached[module])
    return DeepRun(outcomes=tuple(o for o in outcomes if o.dependent == dependent), complete=True)


def sweep_key(baseline: Baseline, image_id: str) -> str:
    """What a baseline's whole-package import is cached under: the baseline and
    the code that imports and judges the modules."""
    digest = hashlib.sha256(b"import-sweep\n" + baseline.cache_key(image_id).encode())
    digest.update((SMOKE_DIR / "modules.py").read_bytes())
    return digest.hexdigest()[:24]


__all__ = [
    "baseline_run",
    "module_context",
    "module_inputs",
    "pin_identity",
    "run_key",
    "settings_key",
    "sweep_key",
]
