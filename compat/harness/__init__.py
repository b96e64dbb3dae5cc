"""Running combinations in real environments and turning what happens into verdicts.

``make_pipeline`` picks a ``Backend`` (``DockerBackend``: containers of the target
image; ``LocalBackend``: this machine's Python) and returns the ``Pipeline`` that
runs combinations over it: fetch, build, unpack, compile, run, classify. The
installs (``installs.py``) and the wheelhouse are its caches; results are values
(``compat.model.ComboResult``), handed to the caller as they land.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx

from compat.config import RunConfig
from compat.errors import EngineUnavailable
from compat.harness.backend import Backend
from compat.harness.pipeline import Pipeline
from compat.harness.prerun import prerun_failures
from compat.reporter import Reporter
from compat.settings import NetworkSettings

__all__ = [
    "Backend",
    "Pipeline",
    "make_pipeline",
    "prerun_failures",
]

LOCAL_NOTICE = (
    "local backend: combinations run on this machine's own Python; "
    "the results are for the host platform only, not for the target image"
)


def make_pipeline(
    config: RunConfig,
    *,
    cache_dir: Path,
    network: NetworkSettings | None = None,
    reporter: Reporter,
    client: httpx.Client | None = None,
    why: str = "",
    fallback: Callable[[str], str] | None = None,
    cache_only: bool = False,
) -> Pipeline:
    """A pipeline over the backend ``config`` asks for; ``auto`` takes Docker when an
    engine answers, else the host (saying so through ``reporter.warning``). ``why``
    says in the same line why the host was chosen (a fallback). ``fallback``, given
    why the engine is missing, says whether the host may answer instead: it returns
    the line to say or raises. ``client`` replaces the HTTP client (tests).
    ``cache_only`` (``--offline``): files and build requirements from the cache only."""
    from compat.harness.docker_backend import DockerBackend
    from compat.harness.local_backend import LocalBackend

    network = network or NetworkSettings()
    backend: Backend
    if config.backend == "docker":
        backend = DockerBackend(config, cache_dir=cache_dir, network=network)
    elif config.backend == "local":
        reporter.warning(f"{why} -> {LOCAL_NOTICE}" if why else LOCAL_NOTICE)
        backend = LocalBackend(config, network=network)
    else:  # auto
        try:
            backend = DockerBackend(config, cache_dir=cache_dir, network=network)
        except EngineUnavailable as exc:
            first = str(exc).splitlines()[0]
            said = fallback(first) if fallback is not None else first
            reporter.warning(f"{said} -> {LOCAL_NOTICE}")
            backend = LocalBackend(config, network=network)
    return Pipeline(
        backend, config, cache_dir=cache_dir, network=network, client=client, cache_only=cache_only
    )
