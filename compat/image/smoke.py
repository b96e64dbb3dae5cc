"""The smoke suite, run inside a built image the way a scan runs it (``compat.
harness.suite.run_suite``): as the image's own user (nobody if that is root), with no
capabilities and no network, the suite mounted read-only where a scan's runner sees
it, the venv's site-packages composed by the runner, each check with a scan's limit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from compat.config import RunConfig
from compat.effects.container import Container, Engine, Mount, session_containers
from compat.effects.users import NOBODY_USER, is_root
from compat.harness.classify import SuiteOutcome
from compat.harness.docker_backend import SMOKE, suite_spec
from compat.harness.suite import run_suite
from compat.smoke import SMOKE_DIR, runner_argv
from compat.targets.target import PackageManager


def smoke_argv(
    python: str, *, site: str, packages: Sequence[str], check_timeout: float | None
) -> list[str]:
    """``python -I -S runner.py --site SITE --package ...``: isolated from the
    environment and from the interpreter's own site, so only ``site`` is tested."""
    argv = runner_argv(
        python,
        smoke_dir=SMOKE,
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
    """Run the suite once in a fresh container of ``image`` (removed afterwards), as a
    scan runs it (``suite_spec``, ``run_suite``), and classify what it reported: each
    check with a scan's limit, the whole suite with the image's (``config.timeouts``)."""
    session = f"image-smoke-{uuid.uuid4().hex[:12]}"
    user = str((client.api.inspect_image(image).get("Config") or {}).get("User") or "")
    spec = suite_spec(
        image,
        python=python,
        config=config,
        mounts=(Mount(source=SMOKE_DIR, target=SMOKE),),
        user=NOBODY_USER if is_root(user) else user,  # nobody has no home: /tmp is one
        home="/tmp" if is_root(user) else None,
    )
    argv = smoke_argv(python, site=site, packages=packages, check_timeout=config.timeouts.check)
    with session_containers(client, session), Container(client, spec, session=session) as c:
        return run_suite(
            c,
            argv,
            timeout=config.timeouts.image_smoke,
            package_manager=package_manager,
            libc=libc,
            label=image,
        )
