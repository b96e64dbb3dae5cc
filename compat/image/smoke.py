"""The smoke suite, run inside a built image: as the image's own user (nobody if
that is root), with no capabilities, no network, the suite mounted read-only, the
venv's site-packages composed by the runner."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from compat.config import RunConfig
from compat.effects.container import Container, ContainerSpec, Engine, Mount, session_containers
from compat.effects.users import NOBODY_USER, is_root
from compat.harness.classify import SuiteOutcome, classify
from compat.smoke import SMOKE_DIR, runner_argv
from compat.targets.target import PackageManager

SMOKE_MOUNT = "/opt/compat-smoke"


def smoke_argv(
    python: str, *, site: str, packages: Sequence[str], check_timeout: float | None
) -> list[str]:
    """``python -I -S runner.py --site SITE --package ...``: isolated from the
    environment and from the interpreter's own site, so only ``site`` is tested."""
    argv = runner_argv(
        python,
        smoke_dir=SMOKE_MOUNT,
        sites=[site],
        packages=list(packages),
        timeout=check_timeout,
    )
    return [argv[0], "-I", "-S", *argv[1:]]


def run_smoke(
    client: Engine,
    image: str,
    *,
    python: str,
    site: str,
    packages: Sequence[str],
    package_manager: PackageManager | None,
    libc: str,
    config: RunConfig = RunConfig(),
) -> SuiteOutcome:
    """Run the suite once in a fresh container of ``image`` (removed afterwards) and
    classify what it reported: each check with a scan's limit, the whole suite with
    the image's (``config.timeouts``), in a scan's container limits."""
    session = f"image-smoke-{uuid.uuid4().hex[:12]}"
    user = str((client.api.inspect_image(image).get("Config") or {}).get("User") or "")
    spec = ContainerSpec(
        user=NOBODY_USER if is_root(user) else user,
        image=image,
        command=tuple(
            smoke_argv(python, site=site, packages=packages, check_timeout=config.timeouts.check)
        ),
        network=False,
        mounts=(Mount(source=SMOKE_DIR, target=SMOKE_MOUNT),),
        tmpfs=("/tmp",),
        environment={
            "MPLBACKEND": "Agg",
            "TMPDIR": "/tmp",
            **({"HOME": "/tmp"} if is_root(user) else {}),  # nobody has no home
        },
        mem_limit=config.memory,
        pids_limit=config.pids_limit,
    )
    with session_containers(client, session), Container(client, spec, session=session) as c:
        result = c.wait(timeout=config.timeouts.image_smoke)
    return classify(
        result.stdout,
        result.stderr,
        exit_code=result.exit_code,
        timed_out=result.timed_out,
        elapsed=result.duration,
        package_manager=package_manager,
        libc=libc,
    )
