"""Running combinations in real environments and turning what happens into verdicts.

The CLI calls ``make_backend`` and then ``Backend.run``; everything else is inside.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Literal

import httpx

from compat.errors import EngineUnavailable, UsageError
from compat.harness.deep import DeepJob, DeepOutcome, run_deep
from compat.harness.options import RunOptions
from compat.harness.pipeline import OnResult, Pipeline, Progress, prerun_failures
from compat.harness.runtime import Runtime
from compat.model import Combo, ComboResult
from compat.targets.target import Target

__all__ = [
    "Backend",
    "RunOptions",
    "make_backend",
    "prerun_failures",
]

log = logging.getLogger("compat.harness")

BackendKind = Literal["auto", "docker", "local"]

LOCAL_NOTICE = (
    "local backend: combinations run on this machine's own Python; "
    "the results are for the host platform only, not for the target image"
)


class Backend:
    """Runs combinations for a target; one per scan (it holds the engine client)."""

    def __init__(
        self, runtime: Runtime, options: RunOptions, *, client: httpx.Client | None = None
    ) -> None:
        self.runtime = runtime
        self.options = options
        self._pipeline = Pipeline(runtime, options, client=client)

    @property
    def kind(self) -> str:
        return self.runtime.kind

    def run(
        self,
        target: Target,
        combos: Sequence[Combo],
        *,
        on_result: OnResult,
        progress: Progress,
    ) -> list[ComboResult]:
        """Fetch, build, prepare and run ``combos``; each result goes to ``on_result``
        as soon as it is known (so an interrupted scan keeps what it has), and the
        stages report through ``progress(stage, done, total)``: fetch, build, unpack,
        compile, run."""
        return self._pipeline.run(target, combos, on_result=on_result, progress=progress)

    def run_deep(
        self,
        target: Target,
        jobs: Sequence[DeepJob],
        test_layer: Combo,
        *,
        timeout: float,
        progress: Progress,
    ) -> list[DeepOutcome]:
        """Run the deep tier's runner for each job, the test layer installed beside
        (see ``compat.harness.deep``)."""
        return run_deep(
            self._pipeline, target, jobs, test_layer, timeout=timeout, progress=progress
        )

    def close(self) -> None:
        self._pipeline.close()
        self.runtime.close()

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_backend(
    kind: BackendKind | str,
    *,
    options: RunOptions,
    notify: Callable[[str], None],
    client: httpx.Client | None = None,
) -> Backend:
    """The backend asked for; ``auto`` takes Docker when an engine answers, else the
    host (saying so through ``notify``). ``client`` replaces the HTTP client (tests)."""
    from compat.harness.docker_backend import DockerRuntime
    from compat.harness.local_backend import LocalRuntime

    runtime: Runtime
    if kind == "docker":
        runtime = DockerRuntime(options)
    elif kind == "local":
        notify(LOCAL_NOTICE)
        runtime = LocalRuntime(options)
    elif kind == "auto":
        try:
            runtime = DockerRuntime(options)
        except EngineUnavailable as exc:
            first = str(exc).splitlines()[0]
            notify(f"{first} -> {LOCAL_NOTICE}")
            runtime = LocalRuntime(options)
    else:
        raise UsageError(f"unknown backend {kind!r}: use auto, docker or local")
    return Backend(runtime, options, client=client)
