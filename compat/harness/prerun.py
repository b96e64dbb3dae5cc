"""What keeps a combination from running, known before it runs: a file that did not
unpack, an sdist that did not build."""

from __future__ import annotations

from collections.abc import Sequence

from compat.harness.builds import BuildRecord
from compat.harness.suite import Prepared
from compat.model import CheckKind, CheckResult, CheckVerdict, Combo, ComboResult, FileKind, Verdict


def prerun_failures(
    combos: Sequence[Combo],
    *,
    builds: dict[str, BuildRecord],
    unpack_failed: dict[str, str],
    backend: str,
    image_id: str | None = None,
) -> tuple[list[Prepared], list[ComboResult]]:
    """Split ``combos`` into those ready to run and results for those that cannot:
    a pin whose file failed to unpack is install-failed; an sdist pin whose
    build failed (or was not attempted) is build-failed, or a timeout (undecided)
    when each build of it that failed ran out of time."""
    ready: list[Prepared] = []
    failed: list[ComboResult] = []

    def fail(combo: Combo, verdict: Verdict, error: str, log_: str = "", dur: float = 0.0) -> None:
        failed.append(
            ComboResult(
                combo=combo,
                verdict=verdict,
                error=error,
                duration=dur,
                backend=backend,
                image_id=image_id,
                log=log_,
            )
        )

    for combo in combos:
        shas: list[str] = []
        built: list[CheckResult] = []
        notes: list[str] = []
        broken: list[str] = []  # sdists of this combination that did not build
        out_of_time = True  # and each of them only for want of time
        build_log, build_time = "", 0.0
        problem = False
        for pin in combo.pins:
            sha = pin.sha256
            if pin.kind is FileKind.SDIST:
                record = builds.get(pin.sha256)
                if record is None or not record.ok or record.wheel_sha256 is None:
                    broken.append(f"{pin} (sdist): {record.error if record else 'not built'}")
                    out_of_time = out_of_time and record is not None and record.timed_out
                    build_log = build_log or (record.log if record else "")
                    build_time += record.duration if record else 0.0
                    continue
                sha = record.wheel_sha256
                # the build's time is a result too, beside the checks
                name, took = f"build:{pin.name}", record.duration
                built.append(
                    CheckResult(
                        name=name, kind=CheckKind.BUILD, verdict=CheckVerdict.PASS, duration=took
                    )
                )
                notes += [n for n in record.notes if n not in notes]
            if sha in unpack_failed:
                fail(combo, Verdict.INSTALL_FAILED, f"{pin}: {unpack_failed[sha]}")
                problem = True
                break
            shas.append(sha)
        if problem:
            continue
        if broken:
            # a build out of time may be the machine's: undecided, as a check's timeout
            verdict = Verdict.TIMEOUT if out_of_time else Verdict.BUILD_FAILED
            fail(combo, verdict, "; ".join(broken), build_log, build_time)
        else:
            ready.append(
                Prepared(combo=combo, shas=tuple(shas), builds=tuple(built), notes=tuple(notes))
            )
    return ready, failed


__all__ = ["prerun_failures"]
