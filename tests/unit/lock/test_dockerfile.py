"""The Dockerfile renderer: one file for both builders, stages, user, the optional
context (pinned files, built wheels, a CA bundle), system packages, installs, pruning."""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compat.lock import APP_UID, LockInput, Prune, render_dockerfile
from compat.model import Pin
from compat.targets.target import PackageManager
from tests.helpers.lock import ALL_PINS, make_lock, make_pin

Instruction = tuple[str, str]  # (INSTRUCTION, arguments as written, continuations joined)


def instructions(text: str) -> list[Instruction]:
    out: list[Instruction] = []
    pending = ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + "\n"
            continue
        word, _, rest = (pending + line).strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        pending = ""
    assert not pending, "dangling line continuation"
    return out


def stages(text: str) -> list[list[Instruction]]:
    out: list[list[Instruction]] = []
    for ins in instructions(text):
        if ins[0] == "FROM":
            out.append([])
        if not out:  # only ARGs may come before the first FROM (used by the FROMs)
            assert ins[0] == "ARG", ins
            continue
        out[-1].append(ins)
    return out


def runs(stage: list[Instruction]) -> list[str]:
    return [args for word, args in stage if word == "RUN"]


MANAGERS: list[PackageManager | None] = [PackageManager.APT, PackageManager.APK, None]
VARIANTS = list(itertools.product(MANAGERS, [True, False], [True, False]))


def variant(manager: PackageManager | None, sdist: bool, prune: bool) -> tuple[LockInput, str]:
    system = {"apt": ("libgomp1",), "apk": ("libgomp",), None: ()}[manager]
    lock = make_lock(
        profile="alpine" if manager == "apk" else "debian-slim",
        sdist=sdist,
        system=system,
        manager=manager,
    )
    if manager == "apk" and not sdist:  # the musl data set has an sdist: use wheels only
        lock = make_lock(
            profile="alpine",
            manager=PackageManager.APK,
            system=system,
            pins=(lock.combo.pin("numpy"),),
        )
    return lock, render_dockerfile(lock, prune=prune)


@pytest.mark.parametrize(("manager", "sdist", "prune"), VARIANTS)
def test_final_stage_runs_as_a_non_root_user(
    manager: PackageManager | None, sdist: bool, prune: bool
) -> None:
    _, text = variant(manager, sdist, prune)
    final = stages(text)[-1]
    users = [args for word, args in final if word == "USER"]
    assert users[-1] == f"{APP_UID}:{APP_UID}"
    assert APP_UID != 0
    # nothing runs after the switch: every build step happened as root before it
    last_user = max(i for i, (word, _) in enumerate(final) if word == "USER")
    assert all(word in ("WORKDIR", "LABEL", "ENV") for word, _ in final[last_user + 1 :])
    created = " ".join(runs(final))
    assert str(APP_UID) in created


# what both the classic builder (no BuildKit: the docker SDK's, docker.io without
# buildx) and BuildKit's built-in frontend parse, with no frontend image to pull
PORTABLE = {"ARG", "FROM", "USER", "COPY", "RUN", "LABEL", "ENV", "WORKDIR"}


@pytest.mark.parametrize(("manager", "sdist", "prune"), VARIANTS)
def test_one_file_for_the_classic_builder_and_buildkit(
    manager: PackageManager | None, sdist: bool, prune: bool
) -> None:
    lock, text = variant(manager, sdist, prune)
    # no parser directive: `# syntax=` would make BuildKit pull a frontend image
    assert not re.search(r"(?im)^#\s*(syntax|escape|check)\s*=", text)
    assert "--mount" not in text  # "the --mount option requires BuildKit"
    assert "<<" not in text  # heredocs: BuildKit only
    every = instructions(text)
    assert {word for word, _ in every} <= PORTABLE
    assert every[0] == ("ARG", f"BASE={lock.target.image}")  # global, before any FROM
    assert [args for word, args in every if word == "ARG"] == [f"BASE={lock.target.image}"]
    assert [args for word, args in every if word == "FROM"] == ["${BASE} AS build", "${BASE}"]
    for word, args in every:
        if word == "COPY":
            assert args in (". /tmp/compat/", "--from=build /opt/venv /opt/venv")


@pytest.mark.parametrize(("manager", "sdist", "prune"), VARIANTS)
def test_nothing_of_the_context_reaches_the_image(
    manager: PackageManager | None, sdist: bool, prune: bool
) -> None:
    """The context (pinned files, built wheels, a proxy's CA bundle) enters the builder
    stage alone; the final stage copies the venv and nothing else, and no ENV or ARG
    carries a certificate, a secret or a proxy."""
    _, text = variant(manager, sdist, prune)
    build, final = stages(text)
    assert ("COPY", ". /tmp/compat/") in build
    assert [args for word, args in final if word in ("COPY", "ADD")] == [
        "--from=build /opt/venv /opt/venv"
    ]
    assert "/tmp/compat" not in "\n".join(args for _, args in final)
    assert "ca.crt" not in "\n".join(args for _, args in final)
    env = " ".join(args for word, args in instructions(text) if word == "ENV")
    assert set(re.findall(r"(\w+)=", env)) == {"VIRTUAL_ENV", "PATH"}
    assert not re.search(r"(?i)cert|secret|token|password|proxy|ca_bundle", env)
    for run in runs(build):
        if "ca.crt" in run:  # exported for that RUN's pip only, never copied anywhere
            assert run.startswith(
                "if [ -s /tmp/compat/ca.crt ]; then export PIP_CERT=/tmp/compat/ca.crt "
            )
            assert not re.search(r"(cp|cat|tee|>)\s*\S*ca\.crt", run)


@pytest.mark.parametrize("manager", MANAGERS)
@pytest.mark.parametrize("sdist", [True, False])
def test_the_venv_is_made_in_a_builder_stage(manager: PackageManager | None, sdist: bool) -> None:
    lock, text = variant(manager, sdist, True)
    assert bool(lock.source_builds) is sdist
    build, final = stages(text)
    assert build[:3] == [("FROM", "${BASE} AS build"), ("USER", "root"), ("COPY", ". /tmp/compat/")]
    assert len(runs(build)) == (2 if sdist else 1)  # the toolchain, then the venv
    assert "python3 -m venv /opt/venv" in runs(build)[-1]
    assert ("COPY", "--from=build /opt/venv /opt/venv") in final


def test_apt_system_packages_and_toolchain() -> None:
    _, text = variant(PackageManager.APT, True, True)
    build, final = stages(text)
    final_runs = " ".join(runs(final))
    assert "apt-get install -y -q --no-install-recommends libgomp1" in final_runs
    assert "rm -rf /var/lib/apt/lists/*" in final_runs
    assert "build-essential" not in final_runs
    assert "useradd --uid 10001" in final_runs
    toolchain = runs(build)[0]
    assert "--no-install-recommends build-essential cmake" in toolchain
    assert "$headers" in toolchain
    assert "apk" not in text


def test_apk_system_packages_and_toolchain() -> None:
    _, text = variant(PackageManager.APK, True, True)
    build, final = stages(text)
    final_runs = " ".join(runs(final))
    assert "apk add --no-cache libgomp" in final_runs
    assert "build-base" not in final_runs
    assert "adduser -S -D -u 10001" in final_runs
    assert "apk add --no-cache build-base cmake" in runs(build)[0]
    assert "apt-get" not in text


def test_no_package_manager_writes_the_account_itself() -> None:
    _, text = variant(None, False, True)
    assert "apt-get" not in text
    assert "apk " not in text
    assert "useradd" not in text
    account = " ".join(runs(stages(text)[-1]))
    assert ">> /etc/passwd" in account
    assert "chown 10001:10001 /home/app" in account


def test_install_requires_hashes_and_built_wheels_come_from_the_builder() -> None:
    lock, text = variant(PackageManager.APT, True, True)
    build, _ = stages(text)
    [install] = [r for r in runs(build) if "python3 -m venv /opt/venv" in r]
    commands = [c.strip() for c in install.split("\n && ")]
    wheel = next(c for c in commands if " pip wheel " in c)
    assert "--require-hashes" in wheel
    assert "--no-deps" in wheel
    assert "--no-binary lightgbm" in wheel
    built = next(c for c in commands if "/tmp/compat/built/*.whl" in c)
    assert "--no-index --no-deps" in built
    final = next(c for c in commands if "-r /tmp/compat/requirements.txt" in c)
    assert "--require-hashes --no-deps" in final
    assert commands.index(built) < commands.index(final)  # the sdist pins are then satisfied
    [sdist] = lock.source_builds
    assert f"'lightgbm==4.6.0 --hash=sha256:{sdist.sha256}'" in install


def test_pruning_is_an_option() -> None:
    lock = make_lock(sdist=False)
    full = render_dockerfile(lock, prune=True)
    assert "-name tests -prune -exec rm -rf" in full
    assert "-name '*.pyx' -o -name '*.pxd' -o -name '*.c'" in full
    assert "pip uninstall -y -q pip setuptools" in full
    none = render_dockerfile(lock, prune=False)
    for word in ("tests", "*.pyx", "uninstall"):
        assert word not in none


def _builder_commands(text: str) -> list[str]:
    """The builder stage's RUN commands, one per ``&&``."""
    runs = [arg for op, arg in instructions(text.split("\nFROM ")[1]) if op == "RUN"]
    return [c.strip() for run in runs for c in run.split(" && ")]


def test_bytecode_is_compiled_in_the_builder_stage_by_default() -> None:
    lock = make_lock(sdist=False)
    for prune in (True, False):
        commands = _builder_commands(render_dockerfile(lock, prune=prune))
        (compiled,) = [c for c in commands if "compileall" in c]
        # every module of the venv, checked by hash alone (valid however files are stamped)
        assert "/opt/venv/bin/python -m compileall" in compiled
        assert "--invalidation-mode unchecked-hash /opt/venv/lib" in compiled
        assert compiled == commands[-1]  # after pruning: nothing pruned is compiled
        assert not [c for c in commands if "__pycache__" in c]
        # pip compiles nothing itself: one compile, over what is kept
        installs = [c for c in commands if " -m pip install " in c]
        assert installs
        assert all("--no-compile" in c for c in installs)


def test_no_bytecode_strips_it_instead() -> None:
    lock = make_lock(sdist=False)
    stripped = render_dockerfile(lock, prune=Prune.chosen(prune=True, bytecode=False))
    commands = _builder_commands(stripped)
    assert "compileall" not in stripped
    assert commands[-1] == "find /opt/venv -type d -name __pycache__ -prune -exec rm -rf {} +"
    assert "-name tests -prune" in stripped  # the rest is pruned as before
    only = Prune.chosen(prune=False, bytecode=False)
    assert (only.tests, only.sources, only.installers, only.bytecode) == (False, False, False, True)
    assert Prune.chosen(prune=True, bytecode=True) == Prune()


def test_pinned_setuptools_stays() -> None:
    pins = (
        make_pin("numpy", "2.3.1", "numpy-2.3.1-cp311-cp311-manylinux_2_28_x86_64.whl"),
        make_pin("setuptools", "80.9.0", "setuptools-80.9.0-py3-none-any.whl"),
    )
    text = render_dockerfile(make_lock(pins=pins, system=()))
    assert "pip uninstall -y -q pip\n" in text.replace(" \\\n", "\n")


def test_the_base_is_a_build_arg_and_output_is_stable() -> None:
    lock = make_lock()
    text = render_dockerfile(lock)
    assert instructions(text)[0] == ("ARG", "BASE=python:3.11-slim")
    assert "--build-arg BASE=IMAGE" in text  # the header says how
    assert render_dockerfile(lock) == render_dockerfile(lock)


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")
@pytest.mark.parametrize(("manager", "sdist", "prune"), VARIANTS)
def test_every_run_is_valid_shell(manager: PackageManager | None, sdist: bool, prune: bool) -> None:
    _, text = variant(manager, sdist, prune)
    for run in runs(instructions(text)):
        # the builder joins continued lines before the shell sees them
        script = run.replace("\n", " ")
        checked = subprocess.run(["sh", "-n", "-c", script], capture_output=True, text=True)
        assert checked.returncode == 0, (script, checked.stderr)


# A stand-in for every program the builder stage runs: it logs its argv (and the CA
# pip would be given), makes venvs, and prints a path for `python -c`.
_STUB = """#!/bin/sh
echo "$(basename "$0") $* [cert=${PIP_CERT:-}]" >> "$STUB_LOG"
case "$1 $2" in
  "-m venv") mkdir -p "$3/bin" "$3/lib" && cp "$0" "$3/bin/python" ;;
esac
case "$*" in
  *"-c "*) echo /bin/echo ;;
  *"-m pip wheel"*) mkdir -p "$STUB_BUILT" && : > "$STUB_BUILT/built-0-py3-none-any.whl" ;;
esac
"""


def _run_builder_stage(
    lock: LockInput, tmp: Path, *, files: bool = False, built: bool = False, ca: bool = False
) -> list[str]:
    """Run the builder stage's RUNs with stand-ins for python, pip and the package
    manager, the context laid out as asked, paths moved under ``tmp``. Returns the
    commands run, in order."""
    build, _ = stages(render_dockerfile(lock))
    context, venv, toolchain = tmp / "context", tmp / "venv", tmp / "toolchain"
    (context / "dist").mkdir(parents=True)
    if not files:
        (context / "dist").rmdir()
    if built:
        (context / "dist" / "built").mkdir()
        (context / "dist" / "built" / "lightgbm-4.6.0-py3-none-any.whl").write_bytes(b"")
    if ca:
        (context / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    (context / "requirements.txt").write_text("")
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    for name in ("python3", "apt-get", "apk"):
        (bin_dir / name).write_text(_STUB)
        (bin_dir / name).chmod(0o755)
    log = tmp / "log"
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "STUB_LOG": str(log),
        "STUB_BUILT": str(context / "built"),
    }
    for run in runs(build):
        script = (  # continued lines joined, as the builder hands them to the shell
            run.replace("\n", " ")
            .replace("/tmp/compat", str(context))
            .replace("/opt/venv", str(venv))
            .replace("/opt/compat-toolchain", str(toolchain))
            .replace("/var/lib/apt/lists", str(tmp / "lists"))
        )
        done = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True)
        assert done.returncode == 0, (script, done.stderr)
    calls = log.read_text().splitlines() if log.exists() else []
    return [c.replace(str(context), "CTX") for c in calls]


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")
@pytest.mark.parametrize("manager", [PackageManager.APT, None])
def test_the_builder_stage_takes_what_the_context_brings(
    manager: PackageManager | None, tmp_path: Path
) -> None:
    """One file, three contexts: the lock directory alone (files from the index, the
    sdist compiled), with dist/ (no index for the pins: offline), with dist/built/
    (the scan's wheels: no toolchain, nothing compiled); a ca.crt reaches pip."""
    lock, _ = variant(manager, True, True)
    installer = "apt-get install" if manager else "ziglang=="  # the toolchain's install

    alone = _run_builder_stage(lock, tmp_path / "alone")
    assert any(installer in c for c in alone), alone
    [wheel] = [c for c in alone if "-m pip wheel" in c]
    assert "--find-links" not in wheel
    [pins] = [c for c in alone if "-r CTX/requirements.txt" in c]
    assert "--no-index" not in pins
    assert "--find-links" not in pins
    assert not [c for c in alone if "[cert=]" not in c]

    offline = _run_builder_stage(lock, tmp_path / "files", files=True)
    [wheel] = [c for c in offline if "-m pip wheel" in c]
    assert "--find-links CTX/dist" in wheel
    assert "--no-index" not in wheel  # build requirements come from the index
    [pins] = [c for c in offline if "-r CTX/requirements.txt" in c]
    assert "--no-index --find-links CTX/dist" in pins

    prebuilt = _run_builder_stage(lock, tmp_path / "built", files=True, built=True, ca=True)
    assert not [c for c in prebuilt if installer in c or "-m pip wheel" in c]
    [wheels] = [c for c in prebuilt if "CTX/built/" in c]
    assert "--no-index --no-deps" in wheels
    assert "lightgbm-4.6.0-py3-none-any.whl" in wheels
    assert all("[cert=CTX/ca.crt]" in c for c in prebuilt)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.sampled_from(ALL_PINS), min_size=1, unique_by=lambda p: p.name),
    st.sampled_from(MANAGERS),
)
def test_stages_and_user_for_any_combination(
    chosen: list[Pin], manager: PackageManager | None
) -> None:
    lock = make_lock(pins=tuple(sorted(chosen, key=lambda p: p.name)), system=(), manager=manager)
    text = render_dockerfile(lock)
    found = stages(text)
    assert len(found) == 2
    assert [a for w, a in found[-1] if w == "USER"][-1] == f"{APP_UID}:{APP_UID}"
    toolchain = "build-essential" in text or "build-base" in text
    assert toolchain is (bool(lock.source_builds) and manager is not None)
    # wheels reach the venv through requirements.txt; sdists are named to the builder
    for pin in lock.combo.pins:
        assert (pin.sha256 in text) is (pin in lock.source_builds)


def test_no_package_manager_builds_sdists_with_the_pypi_toolchain() -> None:
    """The musl base has no package manager: the builder stage installs zig, cmake,
    ninja and meson from PyPI, builds each sdist with its own settings, and the final
    stage gets the venv alone. The lock says the build has no OpenMP."""
    lock, text = variant(None, True, True)
    build, final = stages(text)
    toolchain, install = runs(build)
    assert toolchain.startswith("if [ -s /tmp/compat/ca.crt ]; then export PIP_CERT=")
    assert "ziglang==" in toolchain
    assert "--only-binary :all:" in toolchain
    assert "/opt/compat-toolchain/wrappers/c++" in toolchain
    # a failing step stops the RUN: no bare `||` between the `&&`s
    for command in toolchain.split("\n && "):
        assert "||" not in command or command.startswith(("{", "if ")), command
    commands = [c.strip() for c in install.split("\n && ")]
    env = next(c for c in commands if "export PATH=" in c)
    assert "CC=/opt/compat-toolchain/wrappers/cc" in env
    wheel = next(c for c in commands if " pip wheel " in c)
    assert commands.index(env) < commands.index(wheel)
    assert wheel.startswith("/opt/compat-toolchain/bin/python -m pip wheel")
    assert "--require-hashes" in wheel
    assert "--no-binary lightgbm" in wheel
    [sdist] = lock.source_builds
    # on the requirement's own line: pip gives command-line --config-settings to no
    # requirement read from a file
    config = "--config-settings=cmake.define.USE_OPENMP=OFF"
    assert f"'lightgbm==4.6.0 --hash=sha256:{sdist.sha256} {config}'" in install
    assert "# lightgbm built without OpenMP: single-threaded training" in text
    # nothing of the toolchain reaches the final stage
    assert "compat-toolchain" not in "\n".join(a for _, a in final)
    assert ("COPY", "--from=build /opt/venv /opt/venv") in final
