"""A Dockerfile that rebuilds a locked environment on its base image.

Shape: the system packages the scan found necessary, a non-root user, and a
virtualenv in /opt/venv installed with ``--require-hashes --no-deps`` from the
lock's requirements.txt, pruned in the same layer that created it. When some pin
has no wheel for the target, a builder stage with the distro's toolchain builds
those sdists into wheels and installs the whole venv; the final stage copies the
venv alone, so no compiler, sdist or wheel reaches the final image.

Secrets: a CA bundle for a TLS-inspecting proxy comes in as a BuildKit secret
(``docker build --secret id=ca,src=...``) mounted only for the RUN that downloads;
it never enters a layer, an ENV or an ARG. The classic builder (what the docker
SDK drives) has no secret mounts: ``buildkit=False`` renders the same recipe
without them, for bases that already trust the index's certificate.
"""

from __future__ import annotations

import enum
import shlex
from collections.abc import Sequence

from compat.harness.toolchain import (
    Toolchain,
    build_environment,
    build_settings,
    install_commands,
    wheel_command,
    wrapper_commands,
)
from compat.lock.input import LockInput, Prune
from compat.lock.requirements import header
from compat.targets.sysdeps import PYTHON_HEADERS, TOOLCHAIN, install_command
from compat.targets.target import PackageManager

VENV = "/opt/venv"
WORK = "/tmp/compat"  # requirements, sdists and built wheels during the build
APP_USER = "app"
APP_UID = 10001
CA_SECRET = "ca"
CA_PATH = f"/run/secrets/{CA_SECRET}"
CONTEXT_FILES = "dist"  # directory of the build context holding the pinned files
PREBUILT = "built"  # under CONTEXT_FILES: wheels a scan built from the lock's sdists
# The PyPI toolchain of a builder stage on a base without a package manager.
TOOLCHAIN_VENV = "/opt/compat-toolchain"
TOOLCHAIN_BIN = f"{TOOLCHAIN_VENV}/wrappers"


_PIP_QUIET = "--no-cache-dir --disable-pip-version-check --no-input --progress-bar off"


class FileSource(enum.StrEnum):
    """Where pip takes the pinned files from."""

    INDEX = "index"  # downloaded from the index (PyPI), checked against the hashes
    CONTEXT = "context"  # shipped in the build context under dist/: no download


def _run(commands: Sequence[str], *, mount: str | None = None) -> str:
    """One RUN instruction, one command per line joined with ``&&`` (a failure stops it)."""
    first, *rest = commands
    text = "RUN "
    if mount:
        text += f"{mount} \\\n    "
    text += first
    for command in rest:
        text += f" \\\n && {command}"
    return text


def _system_packages(manager: PackageManager, packages: Sequence[str]) -> list[str]:
    # the harness's own command, so images and scans install packages the same way
    return install_command(manager, packages).split(" && ")


def _toolchain(manager: PackageManager) -> list[str]:
    # Python headers only when the interpreter lacks them: a distro Python needs
    # python3-dev, an official python:* image ships its own (and the distro's would
    # be another Python's)
    headers = (
        "{ headers=" + PYTHON_HEADERS[manager] + "; "
        '[ ! -f "$(python3 -c \'import sysconfig; print(sysconfig.get_path("include"))\')'
        '/Python.h" ] || headers=; }'
    )
    packages = " ".join(TOOLCHAIN[manager])
    if manager == PackageManager.APT:
        return [
            headers,
            "apt-get update -q",
            "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "
            f"{packages} $headers",
            "rm -rf /var/lib/apt/lists/*",
        ]
    if manager == PackageManager.DNF:
        return [headers, f"dnf install -y {packages} $headers", "dnf clean all"]
    return [headers, f"apk add --no-cache {packages} $headers"]


def _ca_from_secret() -> str:
    return f"if [ -s {CA_PATH} ]; then export PIP_CERT={CA_PATH} SSL_CERT_FILE={CA_PATH}; fi"


def _pypi_toolchain(*, buildkit: bool) -> str:
    """The RUN that installs the PyPI toolchain (zig as cc/c++, cmake, ninja, meson,
    Cython) in the builder stage of a base with no package manager: the same pinned
    set and wrappers the harness builds with."""
    commands = [_ca_from_secret()] if buildkit else []
    commands += install_commands("python3", TOOLCHAIN_VENV)
    commands += wrapper_commands(TOOLCHAIN_VENV, TOOLCHAIN_BIN)
    return _run(commands, mount=f"--mount=type=secret,id={CA_SECRET}" if buildkit else None)


def _build_sdists(lock: LockInput, local: str, *, prebuilt: bool) -> list[str]:
    """Commands building each sdist of ``lock`` into {WORK}/built, hash-checked; with
    ``prebuilt``, taking the wheels the scan built (and tested) from the context."""
    pip = f"{VENV}/bin/python -m pip"
    if prebuilt:
        return [f"cp -r {WORK}/{CONTEXT_FILES}/{PREBUILT} {WORK}/built"]
    if lock.package_manager is None:
        # the PyPI toolchain: one pip run per sdist, each with its own settings (meson
        # rejects cmake's and the other way round); its pip is recent, the base's may not be
        commands = [build_environment(TOOLCHAIN_VENV, TOOLCHAIN_BIN, f"{WORK}/zig-cache")]
        for pin in lock.source_builds:
            line = shlex.quote(f"{pin.name}=={pin.version} --hash=sha256:{pin.sha256}")
            listed = f"{WORK}/sdist-{pin.name}.txt"
            command = wheel_command(
                f"{TOOLCHAIN_VENV}/bin/python",
                f"--require-hashes{local} -r {listed}",
                f"{WORK}/built",
                name=pin.name,
                settings=build_settings(pin.name, Toolchain.PYPI),
            )
            commands += [f"printf '%s\\n' {line} > {listed}", command.replace(" -v ", " -q ")]
        return commands
    lines = " ".join(
        shlex.quote(f"{p.name}=={p.version} --hash=sha256:{p.sha256}") for p in lock.source_builds
    )
    names = ",".join(p.name for p in lock.source_builds)
    # the sdists are hash-checked; their build requirements come from the index,
    # into an isolated build environment even for setup.py-only projects (older
    # pips would otherwise need `wheel` installed in the venv)
    return [
        f"printf '%s\\n' {lines} > {WORK}/sdists.txt",
        f"{pip} wheel {_PIP_QUIET} --no-deps --require-hashes --use-pep517 "
        f"--no-binary {names}{local} "
        f"-w {WORK}/built -r {WORK}/sdists.txt",
    ]


def _create_user(manager: PackageManager | None) -> list[str]:
    uid, name, home = APP_UID, APP_USER, f"/home/{APP_USER}"
    if manager in (PackageManager.APT, PackageManager.DNF):  # both ship shadow's tools
        return [
            f"groupadd --gid {uid} {name}",
            f"useradd --uid {uid} --gid {uid} --create-home --home-dir {home} "
            f"--shell /usr/sbin/nologin {name}",
        ]
    if manager == PackageManager.APK:
        return [
            f"addgroup -S -g {uid} {name}",
            f"adduser -S -D -u {uid} -G {name} -h {home} -s /sbin/nologin {name}",
        ]
    # no package manager, maybe no user tools either: the account files directly
    return [
        f"echo '{name}:x:{uid}:{uid}:{name}:{home}:/sbin/nologin' >> /etc/passwd",
        f"echo '{name}:x:{uid}:' >> /etc/group",
        f"mkdir -p {home}",
        f"chown {uid}:{uid} {home}",
    ]


def _prune(lock: LockInput, prune: Prune) -> list[str]:
    site = f"{VENV}/lib"
    commands = []
    if prune.tests:
        commands.append(
            f"find {site} -path '*/site-packages/*' -type d -name tests -prune -exec rm -rf {{}} +"
        )
    if prune.sources:
        commands.append(
            f"find {site} -path '*/site-packages/*' -type f "
            # -exec, not -delete: BusyBox's find may lack it
            "\\( -name '*.pyx' -o -name '*.pxd' -o -name '*.c' \\) -exec rm -f {} +"
        )
    if prune.installers:
        pinned = {p.name for p in lock.combo.pins}
        tools = [t for t in ("pip", "setuptools") if t not in pinned]
        if tools:
            # pip is used up to here; it removes itself cleanly
            commands.append(f"{VENV}/bin/python -m pip uninstall -y -q {' '.join(tools)}")
    if prune.bytecode:
        # last: running pip above writes bytecode too
        commands.append(f"find {VENV} -type d -name __pycache__ -prune -exec rm -rf {{}} +")
    return commands


def _install(
    lock: LockInput, prune: Prune, *, source: FileSource, buildkit: bool, prebuilt: bool = False
) -> str:
    """The RUN that creates, fills and prunes the venv."""
    pip = f"{VENV}/bin/python -m pip"
    compile_flag = " --no-compile" if prune.bytecode else ""
    local = f" --find-links {WORK}/{CONTEXT_FILES}" if source is FileSource.CONTEXT else ""
    commands = []
    mount = None
    if buildkit and source is FileSource.INDEX:
        mount = f"--mount=type=secret,id={CA_SECRET}"
        commands.append(_ca_from_secret())
    commands.append(f"python3 -m venv {VENV}")
    if lock.source_builds:
        commands += [
            *_build_sdists(lock, local, prebuilt=prebuilt),
            # built wheels have no hash known ahead: installed from the builder's own dir
            f"{pip} install {_PIP_QUIET} --no-index --no-deps{compile_flag} {WORK}/built/*.whl",
        ]
    index = " --no-index" if source is FileSource.CONTEXT else ""
    # the sdist pins are already satisfied by their built wheels and are skipped
    commands.append(
        f"{pip} install {_PIP_QUIET} --require-hashes --no-deps{compile_flag}{index}{local} "
        f"-r {WORK}/requirements.txt"
    )
    commands += _prune(lock, prune)
    commands.append(f"rm -rf {WORK}")
    return _run(commands, mount=mount)


def render_dockerfile(
    lock: LockInput,
    *,
    prune: bool | Prune = True,
    source: FileSource = FileSource.INDEX,
    buildkit: bool = True,
    base_image: str | None = None,
    prebuilt: bool = False,
) -> str:
    """The Dockerfile for ``lock``, built from a context holding requirements.txt (and,
    with ``source=CONTEXT``, every pinned file under dist/; with ``prebuilt`` too, the
    wheels a scan built from the sdists on this base under dist/built/, so the builder
    stage installs what was tested instead of compiling again).

    Multi-stage when the lock has source builds (the builder stage carries the
    toolchain) or when the files come from the context (so they stay out of the
    final image); otherwise one stage whose venv is made and pruned in one layer."""
    how = Prune.of(prune)
    base = base_image or lock.target.image
    manager = lock.package_manager
    staged = bool(lock.source_builds) or source is FileSource.CONTEXT
    out = [f"# {line}" for line in header(lock)]
    out.append("#")
    if source is FileSource.CONTEXT:
        out.append(f"# Build context: requirements.txt, and every pinned file in {CONTEXT_FILES}/.")
    else:
        out.append("# Build context: requirements.txt. Files come from the index, hash-checked.")
    if buildkit and source is FileSource.INDEX:
        out += [
            "# Behind a TLS-inspecting proxy, pass its CA bundle as a BuildKit secret",
            "# (used for the download only, never stored in the image):",
            f"#   docker build --secret id={CA_SECRET},src=/path/to/ca-bundle.crt -t IMAGE .",
        ]
    out.append("")

    copy_in = [f"COPY requirements.txt {WORK}/requirements.txt"]
    if source is FileSource.CONTEXT:
        copy_in.append(f"COPY {CONTEXT_FILES}/ {WORK}/{CONTEXT_FILES}/")
    if prebuilt and source is not FileSource.CONTEXT:
        raise ValueError("prebuilt wheels come in the build context: source=CONTEXT")
    install = _install(lock, how, source=source, buildkit=buildkit, prebuilt=prebuilt)

    if staged:
        out += [f"FROM {base} AS build", "USER root"]
        if lock.source_builds and prebuilt:
            names = ", ".join(p.name for p in lock.source_builds)
            out.append(f"# {names}: the wheels the scan built from their sdists on this base")
        elif lock.source_builds:
            if manager is None:
                out.append(
                    "# no package manager: the compiler (zig) and build tools come from PyPI"
                )
                out.append(_pypi_toolchain(buildkit=buildkit))
            else:
                out.append(_run(_toolchain(manager)))
        out += [*copy_in, install, ""]

    out += [f"FROM {base}", "USER root"]
    if lock.system_packages and manager is not None:
        out.append(_run(_system_packages(manager, lock.system_packages)))
    out.append(_run(_create_user(manager)))
    if staged:
        out.append(f"COPY --from=build {VENV} {VENV}")
    else:
        out += [*copy_in, install]
    out += [
        f'LABEL compat.combination="{lock.combo.id}" compat.target="{lock.target.image}"',
        f"ENV VIRTUAL_ENV={VENV} "
        f"PATH={VENV}/bin:${{PATH:-/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin}}",
        f"USER {APP_UID}:{APP_UID}",
        f"WORKDIR /home/{APP_USER}",
    ]
    return "\n".join(out) + "\n"
