"""The Dockerfile renderer: stages, user, secrets, system packages, installs, pruning."""

from __future__ import annotations

import itertools
import re
import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compat.lock import APP_UID, FileSource, LockInput, Prune, render_dockerfile
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
        assert out, "an instruction before the first FROM"
        out[-1].append(ins)
    return out


def runs(stage: list[Instruction]) -> list[str]:
    return [args for word, args in stage if word == "RUN"]


def shell_of(run: str) -> str:
    """The shell command of a RUN, without its --mount flags."""
    return re.sub(r"^(--mount=\S+\s+)+", "", run)


MANAGERS: list[PackageManager | None] = [PackageManager.APT, PackageManager.APK, None]
VARIANTS = list(
    itertools.product(MANAGERS, [True, False], list(FileSource), [True, False], [True, False])
)


def variant(
    manager: PackageManager | None, sdist: bool, source: FileSource, buildkit: bool, prune: bool
) -> tuple[LockInput, str]:
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
    return lock, render_dockerfile(lock, source=source, buildkit=buildkit, prune=prune)


@pytest.mark.parametrize(("manager", "sdist", "source", "buildkit", "prune"), VARIANTS)
def test_final_stage_runs_as_a_non_root_user(
    manager: PackageManager | None, sdist: bool, source: FileSource, buildkit: bool, prune: bool
) -> None:
    _, text = variant(manager, sdist, source, buildkit, prune)
    final = stages(text)[-1]
    users = [args for word, args in final if word == "USER"]
    assert users[-1] == f"{APP_UID}:{APP_UID}"
    assert APP_UID != 0
    # nothing runs after the switch: every build step happened as root before it
    last_user = max(i for i, (word, _) in enumerate(final) if word == "USER")
    assert all(word in ("WORKDIR", "LABEL", "ENV") for word, _ in final[last_user + 1 :])
    created = " ".join(runs(final))
    assert str(APP_UID) in created


@pytest.mark.parametrize(("manager", "sdist", "source", "buildkit", "prune"), VARIANTS)
def test_no_secret_in_env_arg_or_layer(
    manager: PackageManager | None, sdist: bool, source: FileSource, buildkit: bool, prune: bool
) -> None:
    _, text = variant(manager, sdist, source, buildkit, prune)
    every = instructions(text)
    assert not [args for word, args in every if word == "ARG"]
    env = " ".join(args for word, args in every if word == "ENV")
    assert set(re.findall(r"(\w+)=", env)) == {"VIRTUAL_ENV", "PATH"}
    assert not re.search(r"(?i)cert|secret|token|password|proxy|ca_bundle", env)
    copies = [args for word, args in every if word in ("COPY", "ADD")]
    assert not [word for word, _ in every if word == "ADD"]
    for args in copies:
        assert args.startswith(("requirements.txt ", "dist/ ", "--from=build /opt/venv "))
        assert not re.search(r"(?i)\.(crt|pem)\b|cert", args)
    for run in runs(every):
        if "/run/secrets/" in run:
            # only through a secret mount of that same RUN, never written anywhere
            assert run.startswith("--mount=type=secret,id=ca ")
            assert not re.search(r"(cp|cat|tee|>)\s*\S*/run/secrets", run)


@pytest.mark.parametrize("manager", MANAGERS)
@pytest.mark.parametrize("sdist", [True, False])
def test_multi_stage_exactly_when_sdists_exist(manager: PackageManager | None, sdist: bool) -> None:
    lock, text = variant(manager, sdist, FileSource.INDEX, True, True)
    assert bool(lock.source_builds) is sdist
    found = stages(text)
    assert len(found) == (2 if sdist else 1)
    froms = [args for word, args in instructions(text) if word == "FROM"]
    if sdist:
        assert froms == [f"{lock.target.image} AS build", lock.target.image]
        assert ("COPY", "--from=build /opt/venv /opt/venv") in found[-1]
    else:
        assert froms == [lock.target.image]


@pytest.mark.parametrize("manager", MANAGERS)
@pytest.mark.parametrize("sdist", [True, False])
def test_files_from_the_context_stay_in_the_builder_stage(
    manager: PackageManager | None, sdist: bool
) -> None:
    _, text = variant(manager, sdist, FileSource.CONTEXT, False, True)
    build, final = stages(text)
    assert ("COPY", "dist/ /tmp/compat/dist/") in build
    assert not [args for word, args in final if word == "COPY" and "dist" in args]
    [install] = [r for r in runs(build) if "-r /tmp/compat/requirements.txt" in r]
    assert "--no-index --find-links /tmp/compat/dist" in install
    assert "--mount" not in text


def test_apt_system_packages_and_toolchain() -> None:
    _, text = variant(PackageManager.APT, True, FileSource.INDEX, True, True)
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
    _, text = variant(PackageManager.APK, True, FileSource.INDEX, True, True)
    build, final = stages(text)
    final_runs = " ".join(runs(final))
    assert "apk add --no-cache libgomp" in final_runs
    assert "build-base" not in final_runs
    assert "adduser -S -D -u 10001" in final_runs
    assert "apk add --no-cache build-base cmake" in runs(build)[0]
    assert "apt-get" not in text


def test_no_package_manager_writes_the_account_itself() -> None:
    _, text = variant(None, False, FileSource.INDEX, True, True)
    assert "apt-get" not in text
    assert "apk " not in text
    assert "useradd" not in text
    account = " ".join(runs(stages(text)[-1]))
    assert ">> /etc/passwd" in account
    assert "chown 10001:10001 /home/app" in account


def test_install_requires_hashes_and_built_wheels_come_from_the_builder() -> None:
    lock, text = variant(PackageManager.APT, True, FileSource.INDEX, True, True)
    build, _ = stages(text)
    [install] = [r for r in runs(build) if "python3 -m venv /opt/venv" in r]
    commands = [c.strip() for c in shell_of(install).split("\n && ")]
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
    assert "-name __pycache__ -prune -exec rm -rf" in full
    assert "-name '*.pyx' -o -name '*.pxd' -o -name '*.c'" in full
    assert "pip uninstall -y -q pip setuptools" in full
    assert "--no-compile" in full
    none = render_dockerfile(lock, prune=False)
    for word in ("tests", "__pycache__", "*.pyx", "uninstall", "--no-compile"):
        assert word not in none
    keep_bytecode = render_dockerfile(lock, prune=Prune(bytecode=False))
    assert "__pycache__" not in keep_bytecode
    assert "--no-compile" not in keep_bytecode
    assert "-name tests" in keep_bytecode


def test_pinned_setuptools_stays() -> None:
    pins = (
        make_pin("numpy", "2.3.1", "numpy-2.3.1-cp311-cp311-manylinux_2_28_x86_64.whl"),
        make_pin("setuptools", "80.9.0", "setuptools-80.9.0-py3-none-any.whl"),
    )
    text = render_dockerfile(make_lock(pins=pins, system=()))
    assert "pip uninstall -y -q pip\n" in text.replace(" \\\n", "\n")


def test_classic_builder_variant_differs_only_by_the_secret_mount() -> None:
    lock = make_lock()
    modern = render_dockerfile(lock, buildkit=True)
    classic = render_dockerfile(lock, buildkit=False)
    assert "--mount=type=secret,id=ca" in modern
    assert "--mount" not in classic
    strip = re.compile(
        r"--mount=type=secret,id=ca \\\n\s+if \[ -s /run/secrets/ca \];.*?fi \\\n && "
    )
    body = [ln for ln in strip.sub("", modern).splitlines() if not ln.startswith("#")]
    assert body == [ln for ln in classic.splitlines() if not ln.startswith("#")]


def test_base_image_can_be_overridden_and_output_is_stable() -> None:
    lock = make_lock()
    text = render_dockerfile(lock, base_image="sha256:abc")
    assert [a for w, a in instructions(text) if w == "FROM"] == [
        "sha256:abc AS build",
        "sha256:abc",
    ]
    assert render_dockerfile(lock) == render_dockerfile(lock)


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")
@pytest.mark.parametrize(("manager", "sdist", "source", "buildkit", "prune"), VARIANTS[::3])
def test_every_run_is_valid_shell(
    manager: PackageManager | None, sdist: bool, source: FileSource, buildkit: bool, prune: bool
) -> None:
    _, text = variant(manager, sdist, source, buildkit, prune)
    for run in runs(instructions(text)):
        # the builder joins continued lines before the shell sees them
        script = shell_of(run).replace("\n", " ")
        checked = subprocess.run(["sh", "-n", "-c", script], capture_output=True, text=True)
        assert checked.returncode == 0, (script, checked.stderr)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.sampled_from(ALL_PINS), min_size=1, unique_by=lambda p: p.name),
    st.sampled_from(MANAGERS),
    st.sampled_from(list(FileSource)),
    st.booleans(),
)
def test_stage_count_and_user_for_any_combination(
    chosen: list[Pin], manager: PackageManager | None, source: FileSource, buildkit: bool
) -> None:
    lock = make_lock(pins=tuple(sorted(chosen, key=lambda p: p.name)), system=(), manager=manager)
    text = render_dockerfile(lock, source=source, buildkit=buildkit)
    found = stages(text)
    staged = bool(lock.source_builds) or source is FileSource.CONTEXT
    assert len(found) == (2 if staged else 1)
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
    lock, text = variant(None, True, FileSource.INDEX, True, True)
    build, final = stages(text)
    toolchain, install = runs(build)
    assert toolchain.startswith("--mount=type=secret,id=ca ")  # pip reaches the index
    assert "ziglang==" in toolchain
    assert "--only-binary :all:" in toolchain
    assert "/opt/compat-toolchain/wrappers/c++" in toolchain
    # a failing step stops the RUN: no bare `||` between the `&&`s
    for command in shell_of(toolchain).split("\n && "):
        assert "||" not in command or command.startswith(("{", "if ")), command
    commands = [c.strip() for c in shell_of(install).split("\n && ")]
    env = next(c for c in commands if c.startswith("export "))
    assert "CC=/opt/compat-toolchain/wrappers/cc" in env
    wheel = next(c for c in commands if " pip wheel " in c)
    assert commands.index(env) < commands.index(wheel)
    assert wheel.startswith("/opt/compat-toolchain/bin/python -m pip wheel")
    assert "--require-hashes" in wheel
    assert "--config-settings=cmake.define.USE_OPENMP=OFF" in wheel
    assert "--no-binary lightgbm" in wheel
    [sdist] = lock.source_builds
    assert f"'lightgbm==4.6.0 --hash=sha256:{sdist.sha256}'" in install
    assert "# lightgbm built without OpenMP: single-threaded training" in text
    # nothing of the toolchain reaches the final stage
    assert "compat-toolchain" not in "\n".join(a for _, a in final)
    assert ("COPY", "--from=build /opt/venv /opt/venv") in final
