"""A newcomer on a glibc machine without the base images: the README's first command
answers on this machine's own Python and says what differs, and every hint after it
leads somewhere that works, through to a lock. A musl question on this machine gets
no glibc answer: exit 9 with what to do.

The engine and the images are faked at the backend seam (``DockerBackend``, the image
probe); combinations run in a scripted pipeline; the index is the recorded snapshot."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from compat.cli import cli
from compat.errors import CompatError, EngineUnavailable, ExitCode, ImageUnavailable
from compat.lock import REQUIREMENTS
from compat.model import CheckResult, CheckVerdict, Combo, ComboResult, Verdict
from compat.store import Store, sqlite_url
from compat.targets.profiles import HOST, target_from_profile
from compat.targets.target import Libc, PackageManager, Target
from tests.helpers.pipeline import ScriptedPipeline
from tests.helpers.results import failed, make_combo, passed

DATA = Path(__file__).parents[2] / "data"
BUILT = "local/debian-python:bookworm"  # the image the newcomer builds when told to


def _host(libc: Libc = Libc.GLIBC) -> Target:
    """This machine: Debian 12's Python 3.11 (or a musl one)."""
    return dataclasses.replace(
        target_from_profile("debian-slim", python="3.11"),
        name=HOST,
        image="host (box)",
        libc=libc,
        libc_version=(2, 36),
        probed=True,
        package_manager=None,
    )


class Engine:
    """The container engine: answering or not, with the images built on it."""

    def __init__(self) -> None:
        self.up = True
        self.images: set[str] = set()


class Scripted(ScriptedPipeline):
    """Every combination passes its smoke suite, on whichever backend was opened."""

    def __init__(self, kind: str) -> None:
        super().__init__(smoke=self._passes)
        self.kind = kind

    def _passes(self, target: Target, combo: Combo) -> ComboResult:
        smoke = CheckResult(name="numpy_core", verdict=CheckVerdict.PASS, duration=0.1)
        return ComboResult(
            combo=combo,
            verdict=Verdict.PASS,
            checks=(smoke,),
            backend=self.kind,
            image_id=target.image_id,
        )

    def __enter__(self) -> Scripted:
        return self

    def __exit__(self, *_: object) -> None:
        pass


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> Engine:
    engine = Engine()

    class DockerBackend:
        kind = "docker"

        def __init__(self, _config: object, **_where: object) -> None:
            if not engine.up:
                raise EngineUnavailable("no container engine answers (is dockerd running?)")

    def probe_image(ref: str, *, name: str, **_: Any) -> Target:
        if ref not in engine.images:
            raise ImageUnavailable(
                f"image {ref!r} is not on this machine and cannot be pulled (no route to "
                "registry).\nBuild it or pull it first; or test an image you have with "
                "--image REF, or this machine's own Python with --backend local."
            )
        return dataclasses.replace(
            target_from_profile("debian-slim", python="3.11"),
            name=name,
            image=ref,
            image_id="sha256:" + "b" * 64,
            probed=True,
            package_manager=PackageManager.APT,
        )

    def pipeline(backend: Any, _config: object, **_: object) -> Scripted:
        return Scripted(backend.kind)

    monkeypatch.setattr("compat.harness.docker_backend.DockerBackend", DockerBackend)
    monkeypatch.setattr("compat.targets.probe.probe_image", probe_image)
    monkeypatch.setattr("compat.harness.Pipeline", pipeline)
    monkeypatch.setattr("compat.cli.options.host_target", _host)
    monkeypatch.setattr("compat.workflows.steps.host_target", _host)
    monkeypatch.setattr(
        "compat.cli.options.host_distribution", lambda: "Debian GNU/Linux 12 (bookworm)"
    )
    return engine


@pytest.fixture
def compat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.chdir(tmp_path)  # lock/<base> lands here, as in the newcomer's checkout
    args = ["--snapshot", str(DATA / "index"), "--db", sqlite_url(tmp_path / "r.db")]

    def run(*command: str) -> Result:
        return CliRunner().invoke(cli, [*args, *command])

    return run


def _said(done: Result) -> str:
    """What the command printed and the error it stopped with, however it wraps."""
    error = str(done.exception) if isinstance(done.exception, CompatError) else ""
    return " ".join(f"{done.output} {error}".split())


def _code(done: Result) -> int:
    """The exit code ``compat``'s main turns the command's outcome into."""
    if isinstance(done.exception, CompatError):
        return int(done.exception.exit_code)
    return done.exit_code


def test_the_readme_and_its_hints_lead_a_newcomer_to_a_lock(
    engine: Engine, compat: Any, tmp_path: Path
) -> None:
    # the README's first command, on a machine without the base image
    first = compat("scan", "--base", "debian-slim", "--strategy", "latest")
    assert first.exit_code == 0, first.output
    said = _said(first)
    assert "answered by this machine's own Python for debian-slim (stored as base host)" in said
    assert "Python 3.11 here, 3.12 in python:3.12-slim" in said
    assert "Debian GNU/Linux 12 (bookworm) here, Debian 13 (trixie) in python:3.12-slim" in said
    assert "run compat image" not in said  # image --base host refuses
    hint = "build an image of debian-slim's kind with python3 and run `compat scan --image REF`"
    assert hint in said
    with Store.open(sqlite_url(tmp_path / "r.db")) as store:
        assert store.known_good(HOST)  # stored under the host, as before

    # locking the base straight away says where to go, not back to the first command
    early = compat("lock", "--base", "debian-slim", "--depth", "smoke")
    assert _code(early) == ExitCode.NOTHING_KNOWN_GOOD, early.output
    assert "compat scan --image REF" in _said(early)
    assert "this machine's (base host)" in _said(early)

    # the newcomer builds an image and follows the hint
    engine.images.add(BUILT)
    scanned = compat("scan", "--image", BUILT, "--strategy", "latest")
    assert scanned.exit_code == 0, scanned.output
    assert "answered by this machine" not in _said(scanned)
    assert f"run compat image --image {BUILT}" in _said(scanned)

    locked = compat("lock", "--image", BUILT, "--depth", "smoke", "-o", "lock-here")
    assert locked.exit_code == 0, locked.output
    requirements = (tmp_path / "lock-here" / REQUIREMENTS).read_text()
    assert "numpy==" in requirements
    assert "--hash=sha256:" in requirements


@pytest.mark.parametrize("engine_up", [True, False], ids=["no-image", "no-engine"])
def test_alpine_on_a_glibc_host_is_exit_9_with_what_to_do(
    engine: Engine, compat: Any, tmp_path: Path, engine_up: bool
) -> None:
    engine.up = engine_up
    done = compat("scan", "--base", "alpine", "--strategy", "latest")
    assert _code(done) == ExitCode.IMAGE_UNAVAILABLE, done.output
    said = _said(done)
    assert "this machine's Python is built for glibc, alpine for musl" in said
    assert "pass --image REF" in said
    assert "--backend local" in said
    assert "answered by" not in said
    with Store.open(sqlite_url(tmp_path / "r.db")) as store:
        assert not store.known_good(HOST)  # no glibc answer stored for the musl question


def test_a_musl_host_does_not_answer_for_debian_slim(
    engine: Engine, compat: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    musl = dataclasses.replace(_host(Libc.MUSL), libc_version=(1, 2))
    monkeypatch.setattr("compat.cli.options.host_target", lambda: musl)
    monkeypatch.setattr("compat.workflows.steps.host_target", lambda: musl)
    refused = compat("scan", "--base", "debian-slim", "--strategy", "latest")
    assert _code(refused) == ExitCode.IMAGE_UNAVAILABLE, refused.output
    assert "built for musl, debian-slim for glibc" in _said(refused)


def test_a_named_image_without_an_engine_is_never_replaced(engine: Engine, compat: Any) -> None:
    engine.up = False
    done = compat("scan", "--image", BUILT, "--strategy", "latest")
    assert _code(done) == ExitCode.NO_ENGINE, done.output
    assert "never replaced" in _said(done)


def test_a_check_answered_by_this_machine_says_so_last(engine: Engine, compat: Any) -> None:
    done = compat("check", "numpy==2.4.6", "--base", "debian-slim")
    assert done.exit_code == 0, done.output
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("answered by this machine's own Python for debian-slim")
    assert "Python 3.11 here, 3.12 in python:3.12-slim" in last


def test_without_an_engine_the_default_base_is_answered_for_by_a_glibc_host(
    engine: Engine, compat: Any
) -> None:
    engine.up = False
    done = compat("scan", "--strategy", "latest")  # neither --base nor --image: debian-slim
    assert done.exit_code == 0, done.output
    said = _said(done)
    assert "no container engine answers (is dockerd running?) -> answered by this machine" in said
    assert "answered by this machine's own Python for debian-slim (stored as base host)" in said


# -- nightly and bisect follow the same rule -------------------------------------


def _matrix(tmp_path: Path, *bases: str) -> str:
    path = tmp_path / "night.toml"
    listed = ", ".join(f'"{b}"' for b in bases)
    path.write_text(
        f'name = "night"\nbases = [{listed}]\nstrategy = "latest"\n\n'
        '[packages]\nnumpy = ">=2.3"\npandas = ">=2.2"\n'
    )
    return str(path)


def test_nightly_without_an_engine_never_answers_alpine_on_a_glibc_host(
    engine: Engine, compat: Any, tmp_path: Path
) -> None:
    engine.up = False
    done = compat("nightly", "--matrix", _matrix(tmp_path, "debian-slim", "alpine"))
    assert _code(done) == ExitCode.IMAGE_UNAVAILABLE, done.output
    said = _said(done)
    assert "this machine's Python is built for glibc, alpine for musl" in said
    assert "--backend local" in said
    with Store.open(sqlite_url(tmp_path / "r.db")) as store:
        assert store.results() == []  # not even debian-slim's half of the night


def test_nightly_without_an_engine_says_the_host_answered_and_what_differs(
    engine: Engine, compat: Any, tmp_path: Path
) -> None:
    engine.up = False
    matrix = _matrix(tmp_path, "debian-slim", "ubuntu")
    done = compat("nightly", "--matrix", matrix, "--depth", "smoke", "--json")
    assert done.exit_code == 0, done.output
    data = json.loads(done.stdout)
    assert [s["for"] for s in data["stand_in"]] == ["debian-slim", "ubuntu"]
    assert "Python 3.11 here, 3.12 in python:3.12-slim" in data["stand_in"][0]["differs"]
    assert [b["base"] for b in data["bases"]] == [HOST]  # the host ran once, for both
    assert "ubuntu: answered above, by host" in _said(done)
    with Store.open(sqlite_url(tmp_path / "r.db")) as store:
        assert store.known_good(HOST)
    again = compat("nightly", "--matrix", matrix, "--depth", "smoke")
    assert again.exit_code == 0, again.output
    last = again.stdout.strip().splitlines()[-1]
    assert last.startswith("answered by this machine's own Python for ubuntu")


def test_nightly_of_a_named_image_without_an_engine_is_never_replaced(
    engine: Engine, compat: Any, tmp_path: Path
) -> None:
    engine.up = False
    done = compat("nightly", "--matrix", _matrix(tmp_path, BUILT))
    assert _code(done) == ExitCode.NO_ENGINE, done.output
    assert f"{BUILT} named by image: never replaced" in _said(done)


def _bisectable(tmp_path: Path) -> int:
    """A pass and a failure recorded in the built image; the failure's result id."""
    target = dataclasses.replace(
        target_from_profile("debian-slim", python="3.11"),
        image=BUILT,
        image_id="sha256:" + "b" * 64,
        probed=True,
    )
    with Store.open(sqlite_url(tmp_path / "r.db")) as store:
        run_id = store.start_run(target, backend="docker")
        good = make_combo(target, {"numpy": "1.26.4", "pandas": "2.1.1"})
        bad = make_combo(target, {"numpy": "2.0.2", "pandas": "2.1.1"})
        store.record(run_id, target, passed(target, good))
        return store.record(run_id, target, failed(target, bad))


@pytest.mark.parametrize(
    ("backend", "code"), [("auto", ExitCode.NO_ENGINE), ("local", ExitCode.USAGE)]
)
def test_bisect_never_probes_on_this_machine_for_an_image(
    engine: Engine, compat: Any, tmp_path: Path, backend: str, code: ExitCode
) -> None:
    engine.up = False
    failing = _bisectable(tmp_path)
    done = compat("bisect", str(failing), "--backend", backend)
    assert _code(done) == code, done.output
    said = _said(done)
    assert "bisect runs its probes in the image the two results ran in" in said
    assert "answered by" not in said
    with Store.open(sqlite_url(tmp_path / "r.db")) as store:
        assert len(store.results()) == 2  # no probe ran, on the host or anywhere
        assert store.incompatibilities() == []
