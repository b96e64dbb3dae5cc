"""The JSON the commands print with ``--json``: one function per shape, each shape
documented in the README. Shapes only grow (new keys), never change a key's meaning,
so scripts reading them keep working; exit codes are the same with or without
``--json``."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from compat.lock import LockInput
from compat.model import ComboResult, PinChange, Verdict, spec_text
from compat.report import ReportData
from compat.report.data import LockStatus, ResultEntry, standing_entry
from compat.store import StoredResult
from compat.targets.fallback import StandIn
from compat.workflows.bisect import BisectResult
from compat.workflows.scan import ScanOutcome


def emit(data: object) -> None:
    """Print ``data`` as the command's only output on stdout."""
    click.echo(json.dumps(data, indent=2))


def result_shape(result: ComboResult) -> dict[str, Any]:
    """One combination's result (``check``, ``show``): the stored record, plus the
    failing checks by name and the check errors and skipped checks with reasons."""
    data = result.to_json()
    data["failed_checks"] = [
        c.name for c in result.checks if c.verdict.as_verdict() not in (None, Verdict.PASS)
    ]
    data["check_errors"] = [{"name": c.name, "error": c.error} for c in result.check_errors]
    data["skipped_checks"] = [{"name": c.name, "reason": c.error} for c in result.skipped_checks]
    return data


def stored_shape(stored: StoredResult, result_ids: Mapping[str, int]) -> dict[str, Any]:
    """A result from the database (``show``): where and when it ran, then the result;
    a reused check also names the id of the result that ran it (``result_ids``: uid
    to id, for those in the database)."""
    data = result_shape(stored.result)
    for check in data["checks"]:
        if check["reused_from"] is not None:
            check["reused_from_id"] = result_ids.get(check["reused_from"])
    return {
        "id": stored.id,
        "base": stored.base,
        "image": stored.image,
        "created": stored.created.isoformat(),
        "run": stored.run_id,
        **data,
    }


def _counts(verdicts: Sequence[Verdict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for verdict in verdicts:
        counts[verdict.value] = counts.get(verdict.value, 0) + 1
    return dict(sorted(counts.items()))


def stand_in_shape(stand_in: StandIn) -> dict[str, Any]:
    """This machine answering for a base: which, its image and what differs."""
    return {"for": stand_in.base, "image": stand_in.image, "differs": list(stand_in.differs)}


def scan_shape(outcome: ScanOutcome, stand_in: StandIn | None = None) -> dict[str, Any]:
    """A scan's summary: one row per combination (run now, earlier, or never run);
    ``stand_in`` when this machine answered for the base."""
    size = outcome.image_size
    return {
        "matrix": outcome.plan.matrix,
        "base": outcome.target.name,
        "image": outcome.target.image,
        "image_id": outcome.target.image_id,
        "run": outcome.run_id,
        "store": outcome.store_url,
        "counts": _counts([row.verdict for row in outcome.rows]),
        "rows": [
            {
                "combination": row.combo_id,
                "label": row.label,
                "verdict": row.verdict.value,
                "failed_check": row.failed_check,
                "error": row.error,
                "check_errors": list(row.check_errors),
            }
            for row in outcome.rows
        ],
        "ran": len(outcome.results),
        "image_size": None
        if size is None
        else {"image": size.image, "total": size.total_size, "added": size.added_size},
        "stand_in": None if stand_in is None else stand_in_shape(stand_in),
    }


def lock_shape(locked: LockInput, result: ComboResult, paths: Sequence[Path]) -> dict[str, Any]:
    """What ``lock`` picked and wrote."""
    return {
        "base": locked.target.name,
        "image": locked.target.image,
        "image_id": locked.target.image_id,
        "combination": locked.combo.id,
        "label": locked.combo.label(),
        "pins": {p.name: str(p.version) for p in locked.combo.pins},
        "verdict": result.verdict.value,
        "system_packages": list(locked.system_packages),
        "caps": [c.to_json() for c in locked.caps],
        "notes": list(result.notes),
        "files": [str(p) for p in paths],
    }


def _change(change: PinChange) -> dict[str, str | None]:
    return {
        "name": change.name,
        "good": None if change.old is None else str(change.old),
        "failing": None if change.new is None else str(change.new),
    }


def bisect_shape(found: BisectResult) -> dict[str, Any]:
    """A bisection: the smallest set of changes that fails, and what it cost."""
    return {
        "base": found.base,
        "image_id": found.image_id,
        "good": found.good_result_id,
        "failing": found.failing_result_id,
        "packages": found.packages,
        "culprits": [_change(c) for c in found.culprits],
        "context": found.context,
        "changes": [_change(c) for c in found.changes],
        "verdict": found.verdict.value,
        "explanation": found.explanation,
        "runs": found.runs,
        "probes": len(found.probes),
        "duration": found.duration,
        "incompatibility": found.incompatibility_id,
        "evidence": list(found.evidence),
        "ranges": {n: spec_text(s) for n, s in sorted(found.ranges.items())},
        "neighbours": [
            {
                "name": n.name,
                "version": str(n.version),
                "verdict": n.verdict.value,
                "failed": n.failed,
                "result": n.result_id,
            }
            for n in found.neighbours
        ],
    }


def _lock_status(lock: LockStatus) -> dict[str, Any]:
    return {
        "combination": lock.combo_id,
        "requested": {n: str(v) for n, v in lock.requested},
        "pins": {n: str(v) for n, v in lock.pins},
        "verified": lock.verified.isoformat() if lock.verified else None,
        "depth": lock.depth,
        "matrix": lock.matrix,
        "image_size": lock.image_size,
        "added_size": lock.added_size,
    }


def report_shape(data: ReportData, path: Path) -> dict[str, Any]:
    """Per base, what the page shows at its top: the lock, the verdicts, the
    incompatibilities found by bisection; and where the page was written."""
    bases = []
    for base in data.bases:
        lock = base.lock
        # as the heatmaps count: each combination's standing verdict in scans and nights
        runs: dict[str, list[ResultEntry]] = {}
        for r in base.results:
            if r.kind.in_heatmaps:
                runs.setdefault(r.combo_id, []).append(r)
        latest = {c: (standing_entry(h) or h[-1]).verdict for c, h in runs.items()}
        bases.append(
            {
                "name": base.name,
                "image": base.image,
                "image_id": base.image_id,
                "python": str(base.python),
                "libc": base.libc,
                "results": len(base.results),
                "combinations": _counts(list(latest.values())),
                "lock": None if lock is None else _lock_status(lock),
                "locks": [_lock_status(one) for one in base.shown_locks],
                "image_size": base.image_size,
                "added_size": base.added_size,
                "incompatibilities": [f.line for f in base.findings],
            }
        )
    return {"output": str(path), "bases": bases}


__all__ = [
    "bisect_shape",
    "emit",
    "lock_shape",
    "report_shape",
    "result_shape",
    "scan_shape",
    "stored_shape",
]
