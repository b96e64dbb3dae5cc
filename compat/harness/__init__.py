"""Running combinations in real environments and turning what happens into verdicts.

``make_pipeline`` picks a ``Backend`` (``DockerBackend``: containers of the target
image; ``LocalBackend``: this machine's Python) and returns the ``Pipeline`` that
runs combinations over it: fetch, build, unpack, compile, run, classify. The
installs (``installs.py``) and the wheelhouse are its caches; results are values
(``compat.model.ComboResult``), handed to the caller as they land.
"""

from __future__ import annotations

from typing import Literal

import httpx

from compat.errors import EngineUnavailable, UsageError
from compat.harness.backend import Backend
from compat.harness.options import RunOptions
from compat.harness.pipeline import Pipeline, prerun_failures
from compat.reporter import Reporter

__all__ = [
    "Backend",
    "Pipeline",
    "RunOptions",
    "make_pipeline",
    "prerun_failures",
]

BackendKind = Literal["auto", "docker", "local"]

LOCAL_NOTICE = (
    "local backend: combinations run on this machine's own Python; "
    "the results are for the host platform only, not for the target image"
)


def make_pipeline(
    kind: BackendKind | str,
    *,
    options: RunOptions,
    reporter: Reporter,
    client: httpx.Client | None = None,
    why: str = "",
) -> Pipeline:
    """A pipeline over the backend asked for; ``auto`` takes Docker when an engine
    answers, else the host (saying so through ``reporter.warning``). ``why`` says in
    the same line why the host was chosen (a fallback). ``client`` replaces the HTTP
    client (tests)."""
    from compat.harness.docker_backend import DockerBackend
    from compat.harness.local_backend import LocalBackend

    backend: Backend
    if kind == "docker":
        backend = DockerBackend(options)
    elif kind == "local":
        reporter.warning(f"{why} -> {LOCAL_NOTICE}" if why else LOCAL_NOTICE)
        backend = LocalBackend(options)
    elif kind == "auto":
        try:
            backend = DockerBackend(options)
        except EngineUnavailable as exc:
            first = str(exc).splitlines()[0]
            reporter.warning(f"{first} -> {LOCAL_NOTICE}")
            backend = LocalBackend(options)
    else:
        raise UsageError(f"unknown backend {kind!r}: use auto, docker or local")
    return Pipeline(backend, options, client=client)
