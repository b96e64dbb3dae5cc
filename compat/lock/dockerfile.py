"""The one Dockerfile of a lock: what ``compat lock`` writes, users commit and
``compat image`` builds, smoke-tests and measures, byte for byte.

Shape: two stages. The builder stage copies the build context (the lock
directory), installs a toolchain when some pin has no wheel for the target,
creates a virtualenv in /opt/venv with ``--require-hashes --no-deps`` from
requirements.txt, prunes it and compiles its bytecode (``--no-bytecode``: strips
it instead). The final stage installs the system packages the
scan found necessary, creates a non-root user and copies the venv alone: no
compiler, sdist, wheel, CA bundle or file of the context reaches the image.

One file for both builders: the classic builder (what the docker SDK drives, and
``docker build`` without buildx) knows no ``RUN --mount`` and may not fetch a
``# syntax=`` frontend, so the file uses neither. What a build needs differently
comes from the context, read by the builder stage when present:

- ``dist/``: every pinned file (pip installs with ``--no-index``; ``compat
  image`` puts its wheelhouse there and builds offline);
- ``dist/built/``: wheels built from the lock's sdists on this base (what a scan
  built and tested): the builder stage installs them and no toolchain;
- ``ca.crt``: the CA bundle of a TLS-inspecting proxy, for pip. A BuildKit
  secret mount would keep it out of the builder stage's layers too, but the
  classic builder cannot parse one; a builder stage is never shipped (BuildKit
  does not even export it, and ``compat image`` removes the classic builder's).

and from build args: ``BASE`` (another image of the same kind), and the engine's
predefined proxy args (``HTTPS_PROXY``...), which stay out of the image's history.
"""

from __future__ import annotations

import dataclasses
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
WORK = "/tmp/compat"  # the build context, copied into the builder stage
APP_USER = "app"
APP_UID = 10001
BASE_ARG = "BASE"  # the build arg naming the base image
CONTEXT_FILES = "dist"  # optional, in the build context: every pinned file
PREBUILT = "built"  # optional, under CONTEXT_FILES: wheels built from the lock's sdists
CA_FILE = "ca.crt"  # optional, in the build context: a proxy's CA bundle, for pip
# The PyPI toolchain of a builder stage on a base without a package manager.
TOOLCHAIN_VENV = "/opt/compat-toolchain"
TOOLCHAIN_BIN = f"{TOOLCHAIN_VENV}/wrappers"

_FILES = f"{WORK}/{CONTEXT_FILES}"
_PREBUILT = f"{_FILES}/{PREBUILT}"
_BUILT = f"{WORK}/built"  # the wheels the venv gets for the sdist pins
_CA = f"{WORK}/{CA_FILE}"
_PIP_QUIET = "--no-cache-dir --disable-pip-version-check --no-input --progress-bar off"


def _joined(commands: Sequence[str]) -> str:
    """Commands joined with ``&&`` (a failure stops the RUN), one per line."""
    return " \\\n && ".join(commands)


def _run(commands: Sequence[str]) -> str:
    return "RUN " + _joined(commands)


def _unless_prebuilt(commands: Sequence[str], otherwise: str) -> str:
    """One shell command: ``otherwise`` when the context brought built wheels, else
    ``commands`` (an ``if`` fails when its last command does: a failure still stops)."""
    return f"if [ -d {_PREBUILT} ]; then {otherwise}; else \\\n    " + _joined(commands) + "; fi"


def _ca_from_context() -> str:
    return f"if [ -s {_CA} ]; then export PIP_CERT={_CA} SSL_CERT_FILE={_CA}; fi"


def _system_packages(manager: PackageManager, packages: Sequence[str]) -> list[str]:
    # the harness's own command, so images and scans install packages the same way
    return install_command(manager, packages).split(" && ")


def _distro_toolchain(manager: PackageManager) -> list[str]:
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


def _pypi_toolchain() -> list[str]:
    """The PyPI toolchain (zig as cc/c++, cmake, ninja, meson, Cython) of a base with
    no package manager: the same pinned set and wrappers the harness builds with."""
    return [
        *install_commands("python3", TOOLCHAIN_VENV),
        *wrapper_commands(TOOLCHAIN_VENV, TOOLCHAIN_BIN),
    ]


def _toolchain(lock: LockInput) -> str:
    """The RUN installing the builder stage's toolchain, unless the context brought
    the built wheels."""
    manager = lock.package_manager
    commands = _pypi_toolchain() if manager is None else _distro_toolchain(manager)
    skip = 'echo "compat: wheels built on this base are in the context: no toolchain"'
    return _run([_ca_from_context(), _unless_prebuilt(commands, skip)])


def _build_sdists(lock: LockInput) -> list[str]:
    """Commands building each sdist of ``lock`` into the built-wheels directory,
    hash-checked (their build requirements come from the index)."""
    if lock.package_manager is None:
        # the PyPI toolchain: one pip run per sdist, each with its own settings (meson
        # rejects cmake's and the other way round); its pip is recent, the base's may not be
        commands = [build_environment(TOOLCHAIN_VENV, TOOLCHAIN_BIN, f"{WORK}/zig-cache")]
        for pin in lock.source_builds:
            settings = build_settings(pin.name, Toolchain.PYPI)
            # pip passes command-line --config-settings to no requirement read from a
            # file (pypa/pip#12310): they go on the requirement's own line
            config = "".join(f" --config-settings={c}" for c in settings.config_settings)
            line = shlex.quote(f"{pin.name}=={pin.version} --hash=sha256:{pin.sha256}{config}")
            listed = f"{WORK}/sdist-{pin.name}.txt"
            command = wheel_command(
                f"{TOOLCHAIN_VENV}/bin/python",
                f"--require-hashes $links -r {listed}",
                _BUILT,
                name=pin.name,
                settings=dataclasses.replace(settings, config_settings=()),
            )
            commands += [f"printf '%s\\n' {line} > {listed}", command.replace(" -v ", " -q ")]
        return commands
    lines = " ".join(
        shlex.quote(f"{p.name}=={p.version} --hash=sha256:{p.sha256}") for p in lock.source_builds
    )
    names = ",".join(p.name for p in lock.source_builds)
    # into an isolated build environment even for setup.py-only projects (older
    # pips would otherwise need `wheel` installed in the venv)
    return [
        f"printf '%s\\n' {lines} > {WORK}/sdists.txt",
        f"{VENV}/bin/python -m pip wheel {_PIP_QUIET} --no-deps --require-hashes --use-pep517 "
        f"--no-binary {names} $links -w {_BUILT} -r {WORK}/sdists.txt",
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
    else:
        # last, over what is left: every module the image's user imports has its
        # bytecode (the venv is read-only to it). Hash-checked without looking at the
        # source, so copying or re-stamping the files (SOURCE_DATE_EPOCH) leaves it
        # valid; a file no Python 3 compiles (a template, a Python 2 example) is
        # skipped, as pip skips it
        commands.append(
            f"{{ {VENV}/bin/python -m compileall -q -j 0 --invalidation-mode unchecked-hash "
            f'{VENV}/lib || echo "compat: some files do not compile; left as source"; }}'
        )
    return commands


def _install(lock: LockInput, prune: Prune) -> str:
    """The RUN that creates, fills and prunes the venv."""
    pip = f"{VENV}/bin/python -m pip"
    compile_flag = " --no-compile"  # compiled once, after pruning (or not at all)
    commands = [
        _ca_from_context(),
        # the pinned files from the context when it has them; the sdists' build
        # requirements still come from the index
        f'links= && if [ -d {_FILES} ]; then links="--find-links {_FILES}"; fi',
        f"python3 -m venv {VENV}",
    ]
    if lock.source_builds:
        commands += [
            _unless_prebuilt(_build_sdists(lock), f"cp -r {_PREBUILT} {_BUILT}"),
            # built wheels have no hash known ahead: installed from the builder's own dir
            f"{pip} install {_PIP_QUIET} --no-index --no-deps{compile_flag} {_BUILT}/*.whl",
        ]
    # the sdist pins are already satisfied by their built wheels and are skipped
    commands.append(
        f"{pip} install {_PIP_QUIET} --require-hashes --no-deps{compile_flag} "
        f"${{links:+--no-index}} $links -r {WORK}/requirements.txt"
    )
    commands += _prune(lock, prune)
    return _run(commands)


def _usage(lock: LockInput) -> list[str]:
    lines = [
        "Build it from this directory, with the classic builder or BuildKit:",
        "  docker build -t IMAGE .",
        "The builder stage copies this directory and takes, when present:",
        f"  {CONTEXT_FILES}/        every pinned file: pip installs them with --no-index",
    ]
    if lock.source_builds:
        built = f"{CONTEXT_FILES}/{PREBUILT}/"
        lines.append(f"  {built}  wheels built from the sdists on this base: no toolchain")
    lines += [
        f"  {CA_FILE}       a TLS-inspecting proxy's CA bundle, for pip (do not commit it)",
        "The image gets the venv alone: none of them, and no compiler, is in its layers.",
        f"Options: --build-arg {BASE_ARG}=IMAGE (same distro and Python), "
        "--build-arg HTTPS_PROXY=URL.",
    ]
    return lines


def render_dockerfile(lock: LockInput, *, prune: bool | Prune = True) -> str:
    """The Dockerfile for ``lock``, built from a context holding requirements.txt
    (and optionally dist/, dist/built/ and ca.crt: see the module's doc)."""
    how = Prune.of(prune)
    manager = lock.package_manager
    out = [f"# {line}" for line in header(lock)]
    out.append("#")
    out += [f"# {line}" if line else "#" for line in _usage(lock)]
    out += ["", f"ARG {BASE_ARG}={lock.target.image}", ""]

    out += [f"FROM ${{{BASE_ARG}}} AS build", "USER root", f"COPY . {WORK}/"]
    if lock.source_builds:
        if manager is None:
            out.append("# no package manager: the compiler (zig) and build tools come from PyPI")
        out.append(_toolchain(lock))
    out += [_install(lock, how), ""]

    out += [f"FROM ${{{BASE_ARG}}}", "USER root"]
    if lock.system_packages and manager is not None:
        out.append(_run(_system_packages(manager, lock.system_packages)))
    out += [
        _run(_create_user(manager)),
        f"COPY --from=build {VENV} {VENV}",
        f'LABEL compat.combination="{lock.combo.id}" compat.target="{lock.target.image}"',
        f"ENV VIRTUAL_ENV={VENV} "
        f"PATH={VENV}/bin:${{PATH:-/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin}}",
        f"USER {APP_UID}:{APP_UID}",
        f"WORKDIR /home/{APP_USER}",
    ]
    return "\n".join(out) + "\n"
