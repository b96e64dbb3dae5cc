"""Reading the results database: listings, whole results, what is already done on
an image, known-good candidates, what nightly runs have seen. ``Reader`` is what a
command that only reads needs; ``Store`` adds writing."""

from __future__ import annotations

import dataclasses
import json
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from packaging.specifiers import SpecifierSet

from compat.model import (
    CheckKind,
    CheckResult,
    CheckVerdict,
    Combo,
    ComboResult,
    Depth,
    Incompatibility,
    Inputs,
    Verdict,
    sorted_inputs,
)
from compat.store import migrations
from compat.store.engine import Database
from compat.store.records import ImageSize, KnownGood, ResultRow, StoredResult
from compat.store.schema import (
    checks,
    combinations,
    image_sizes,
    image_system_packages,
    incompatibilities,
    logs,
    results,
    reuse_disagreements,
    runs,
    seen_versions,
    targets,
)
from compat.store.standing import outrankings, standing
from compat.targets.target import Target

BATCH = 500  # rows per query or per import transaction
# the failures a later combination with the same inputs takes as they were
_REUSED_FAILURES = (
    CheckVerdict.IMPORT_ERROR,
    CheckVerdict.RUNTIME_ERROR,
    CheckVerdict.CHECK_ERROR,
)


class Reader(Database):
    """The read queries. Each runs in a transaction of its own."""

    @property
    def schema_version(self) -> int:
        with self.reading() as conn:
            return migrations.current_version(conn)

    # -- skipping done work ------------------------------------------------------

    def filter_todo(
        self, combos: Iterable[Combo], image_id: str | None, *, retest: bool = False
    ) -> list[Combo]:
        """``combos`` without those already tested on ``image_id`` (all with ``retest``),
        in their order. Without an image ID nothing proves a result came from the same
        environment, so everything is to do."""
        todo = list(combos)
        if retest or image_id is None or not todo:
            return todo
        done: set[str] = set()
        with self.reading() as conn:
            for chunk in chunks([c.id for c in todo]):
                done.update(
                    conn.execute(
                        sa.select(results.c.combination_id).where(
                            results.c.image_id == image_id,
                            results.c.combination_id.in_(chunk),
                        )
                    ).scalars()
                )
        return [c for c in todo if c.id not in done]

    def latest_results(
        self, combo_ids: Iterable[str], image_id: str | None
    ) -> dict[str, ResultRow]:
        """Each combination's standing result on the image ID (None: unprobed), else its
        latest (imports alone): what a scan skipped, bisect reuses, nightly counts."""
        latest: dict[str, ResultRow] = {}
        with self.reading() as conn:
            for chunk in chunks(list(dict.fromkeys(combo_ids))):
                query = _ROWS.where(
                    results.c.image_id == image_id, results.c.combination_id.in_(chunk)
                ).order_by(*_OLDEST_FIRST)
                for history in _histories(conn.execute(query)):
                    held = standing([(r.verdict, r.depth) for r in history])
                    row = history[-1 if held is None else held]
                    if row is not history[-1]:
                        row = dataclasses.replace(row, outranking=history[-1].outranking)
                    latest[row.combination_id] = row
        return latest

    # -- reusing check outcomes ---------------------------------------------------

    def reusable(self, keys: Iterable[str]) -> dict[str, list[tuple[Inputs, int]]]:
        """For each reuse key with stored outcomes that may be reused, every
        distinct set of inputs it ran with and the latest result that ran it so.
        Passes and failures are reused (a failure's inputs include every import it
        tried, the one that failed too); a timeout or a crash is not (neither may
        happen again, and a crash reports no inputs), nor a failed import check
        (the runner takes a reused import as imported). Nothing under a key whose
        kept outcome a rerun contradicted is reused."""
        found: dict[str, list[tuple[Inputs, int]]] = {}
        wanted = sorted(set(keys))
        with self.reading() as conn:
            for chunk in chunks(wanted):
                query = (
                    sa.select(checks.c.reuse_key, checks.c.inputs, sa.func.max(checks.c.result_id))
                    .where(
                        checks.c.reuse_key.in_(chunk),
                        checks.c.inputs.is_not(None),
                        sa.or_(
                            checks.c.verdict == CheckVerdict.PASS.value,
                            sa.and_(
                                checks.c.verdict.in_([v.value for v in _REUSED_FAILURES]),
                                checks.c.kind != CheckKind.IMPORT.value,
                            ),
                        ),
                        checks.c.reuse_key.not_in(sa.select(reuse_disagreements.c.reuse_key)),
                    )
                    .group_by(checks.c.reuse_key, checks.c.inputs)
                )
                for key, inputs, result_id in conn.execute(query):
                    found.setdefault(key, []).append((inputs_of(inputs) or (), int(result_id)))
        return found

    def learned_inputs(self, target_key: str) -> tuple[str | None, dict[str, frozenset[str]]]:
        """What checks run on a target imported: the image ID of its latest result,
        and by check name the distributions any of its runs imported there."""
        on_target = sa.and_(
            results.c.combination_id == combinations.c.id,
            combinations.c.target_key == target_key,
        )
        learned: dict[str, set[str]] = {}
        with self.reading() as conn:
            image_id = conn.execute(
                sa.select(results.c.image_id)
                .where(on_target)
                .order_by(results.c.id.desc())
                .limit(1)
            ).scalar()
            query = (
                sa.select(checks.c.name, checks.c.inputs)
                .join(results, _OWN)
                .where(on_target, checks.c.inputs.is_not(None))
                .distinct()
            )
            for name, inputs in conn.execute(query):
                learned.setdefault(name, set()).update(n for n, _ in inputs_of(inputs) or ())
        return image_id, {name: frozenset(names) for name, names in learned.items()}

    def kept_checks(self, wanted: Mapping[str, int]) -> dict[str, tuple[str, CheckResult]]:
        """The stored check of each reuse key in the result ``wanted`` names for it,
        log included, with the uid of the result that really ran it."""
        found: dict[str, tuple[str, CheckResult]] = {}
        with self.reading() as conn:
            for chunk in chunks(sorted(wanted.items())):
                pairs = [
                    sa.and_(checks.c.reuse_key == k, checks.c.result_id == r) for k, r in chunk
                ]
                query = (
                    sa.select(checks, results.c.uid, logs.c.data)
                    .join(results, _OWN)
                    .outerjoin(
                        logs,
                        sa.and_(
                            logs.c.result_id == checks.c.result_id, logs.c.part == checks.c.position
                        ),
                    )
                    .where(sa.or_(*pairs))
                )
                for row in conn.execute(query):
                    check = _check(row, _unpack(row.data) if row.data is not None else "")
                    found[row.reuse_key] = (row.reused_from or row.uid, check)
        return found

    def result_ids(self, uids: Iterable[str]) -> dict[str, int]:
        """The id in this database of each result uid it holds."""
        found: dict[str, int] = {}
        with self.reading() as conn:
            for chunk in chunks(sorted(set(uids))):
                query = sa.select(results.c.uid, results.c.id).where(results.c.uid.in_(chunk))
                found.update({uid: int(id_) for uid, id_ in conn.execute(query)})
        return found

    # -- listings and whole results ----------------------------------------------

    def results(
        self,
        *,
        base: str | None = None,
        verdict: Verdict | None = None,
        image: str | None = None,
        run_id: str | None = None,
        combination: str | None = None,
        limit: int | None = 100,
    ) -> list[ResultRow]:
        """Results, newest first. ``image`` matches an image reference or image ID. A
        pass a deep failure before it outranks carries that ``outranking``."""
        query = _ROWS.order_by(results.c.created.desc(), results.c.id.desc()).limit(limit)
        if combination is not None:
            query = query.where(results.c.combination_id == combination)
        if base is not None:
            query = query.where(runs.c.base == base)
        if verdict is not None:
            query = query.where(results.c.verdict == Verdict(verdict).value)
        if image is not None:
            query = query.where(sa.or_(runs.c.image == image, results.c.image_id == image))
        if run_id is not None:
            query = query.where(results.c.run_id == run_id)
        with self.reading() as conn:
            rows = [_result_row(row) for row in conn.execute(query)]
            marked: dict[int, ResultRow] = {}
            for chunk in chunks(list({r.combination_id for r in rows if r.verdict.ok})):
                everything = _ROWS.where(results.c.combination_id.in_(chunk))
                for history in _histories(conn.execute(everything.order_by(*_OLDEST_FIRST))):
                    marked.update((r.id, r) for r in history if r.outranking)
        return [marked.get(r.id, r) for r in rows]

    def get(self, result_id: int) -> StoredResult | None:
        """One result with its checks and decompressed logs; None if there is none."""
        with self.reading() as conn:
            found = load_results(conn, [result_id])
        return found[0] if found else None

    def target(self, image_id: str) -> Target | None:
        """The target probed for an image ID, as an earlier run recorded it."""
        with self.reading() as conn:
            data = conn.execute(
                sa.select(targets.c.data).where(targets.c.image_id == image_id).limit(1)
            ).scalar()
        return Target.from_json(data) if data is not None else None

    def history_by_target(self) -> list[tuple[Target, list[StoredResult]]]:
        """Every target with every result recorded on it, oldest first, in the order
        the targets were first used: what a report shows."""
        found: list[tuple[Target, list[StoredResult]]] = []
        with self.reading() as conn:
            keyed = conn.execute(
                sa.select(targets.c.key, targets.c.data, sa.func.min(runs.c.started))
                .join(runs, runs.c.target_key == targets.c.key)
                .group_by(targets.c.key, targets.c.data)
                .order_by(sa.func.min(runs.c.started))
            ).all()
            for key, data, _first in keyed:
                ids = conn.execute(
                    sa.select(results.c.id)
                    .join(runs, runs.c.id == results.c.run_id)
                    .where(runs.c.target_key == key)
                    .order_by(results.c.created, results.c.id)
                ).scalars()
                found.append((Target.from_json(data), load_results(conn, list(ids))))
        return found

    def known_good(self, target_or_image: Target | str) -> list[KnownGood]:
        """Combinations whose latest verdict on the image passed, oldest tested first;
        ``compat.lock.select`` ranks them. A Target selects its image ID (its image
        reference when unprobed); a string matches a base name, an image reference or
        an image ID. A pass of imports alone (``--depth import``) is not a verdict
        here: the smoke suite never ran."""
        with self.reading() as conn:
            latest = _latest(conn, target_or_image)
            passing = {cid: row for cid, row in latest.items() if row.verdict == Verdict.PASS}
            combos = _load_combos(conn, list(passing))
        good = [
            KnownGood(
                combo=combos[cid],
                result_id=row.id,
                base=row.base,
                image=row.image,
                image_id=row.image_id,
                tested=utc(row.created),
                matrix=row.matrix_name,
                depth=_depth(row),
            )
            for cid, row in passing.items()
            if cid in combos
        ]
        return sorted(good, key=lambda g: (g.tested, g.combo.id))

    def latest_failures(self, target_or_image: Target | str) -> list[StoredResult]:
        """Combinations whose latest verdict on the image (chosen as ``known_good``
        chooses) is a failure, with their checks but not their logs, oldest first."""
        with self.reading() as conn:
            latest = _latest(conn, target_or_image)
            failing = [row.id for row in latest.values() if not Verdict(row.verdict).ok]
            return load_results(conn, failing, with_logs=False)

    def image_sizes(self, *, base: str | None = None) -> list[ImageSize]:
        """Measured image sizes, newest first."""
        query = sa.select(image_sizes).order_by(
            image_sizes.c.measured.desc(), image_sizes.c.id.desc()
        )
        if base is not None:
            query = query.where(image_sizes.c.base == base)
        with self.reading() as conn:
            rows = conn.execute(query).all()
        return [
            ImageSize(
                id=row.id,
                base=row.base,
                image=row.image,
                image_id=row.image_id,
                total_size=row.total_size,
                added_size=row.added_size,
                lock_hash=row.lock_hash,
                measured=utc(row.measured),
            )
            for row in rows
        ]

    # -- what nightly runs have seen, and known incompatibilities ------------------

    def seen_versions(self, scope: str) -> dict[str, set[str]]:
        """Versions recorded as seen for ``scope`` (name -> versions); empty at first."""
        found: dict[str, set[str]] = {}
        with self.reading() as conn:
            query = sa.select(seen_versions.c.name, seen_versions.c.version).where(
                seen_versions.c.scope == scope
            )
            for name, version in conn.execute(query):
                found.setdefault(name, set()).add(version)
        return found

    def first_seen(self, scope: str) -> dict[tuple[str, str], datetime]:
        """When each (name, version) was first seen for ``scope`` by a nightly run."""
        query = sa.select(
            seen_versions.c.name, seen_versions.c.version, seen_versions.c.first_seen
        ).where(seen_versions.c.scope == scope)
        with self.reading() as conn:
            return {(name, version): utc(when) for name, version, when in conn.execute(query)}

    def system_packages(self, image_id: str | None) -> tuple[str, ...]:
        """The distro packages ``image_id`` is known to need (sorted; empty when none
        was ever missing on it, or for an unprobed target, which has no image ID)."""
        if image_id is None:
            return ()
        query = (
            sa.select(image_system_packages.c.package)
            .where(image_system_packages.c.image_id == image_id)
            .order_by(image_system_packages.c.package)
        )
        with self.reading() as conn:
            return tuple(conn.execute(query).scalars())

    def incompatibilities(self, base: str | None = None) -> list[Incompatibility]:
        query = sa.select(incompatibilities).order_by(incompatibilities.c.id)
        if base is not None:
            query = query.where(incompatibilities.c.base == base)
        with self.reading() as conn:
            return [
                Incompatibility(
                    id=row.id,
                    base=row.base,
                    image_id=row.image_id,
                    packages=dict(row.packages),
                    verdict=Verdict(row.verdict),
                    explanation=row.explanation,
                    evidence=tuple(row.evidence),
                    created=utc(row.created),
                    ranges={n: SpecifierSet(s) for n, s in (row.ranges or {}).items()},
                )
                for row in conn.execute(query)
            ]


# -- rows ------------------------------------------------------------------------


def utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything was written in UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def chunks(items: Sequence[Any], size: int = BATCH) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def inputs_text(inputs: Inputs | None) -> str | None:
    """A check's inputs as stored: JSON with sorted keys, so equal inputs are equal text."""
    return None if inputs is None else json.dumps(dict(sorted(inputs)), sort_keys=True)


def inputs_of(text: str | None) -> Inputs | None:
    return None if text is None else sorted_inputs(json.loads(text))


def _check(row: sa.Row[Any], log: str) -> CheckResult:
    return CheckResult(
        name=row.name,
        kind=CheckKind(row.kind),
        verdict=CheckVerdict(row.verdict),
        duration=row.duration,
        error=row.error,
        log=log,
        inputs=inputs_of(row.inputs),
        key=row.reuse_key,
        reused_from=row.reused_from,
    )


_OWN = checks.c.result_id == results.c.id
# a result judged by the deep tier; one whose checks are all imports (--depth import)
_DEEP = sa.exists().where(_OWN, checks.c.kind == CheckKind.DEEP.value)
_IMPORTS_ONLY = sa.and_(
    sa.exists().where(_OWN), ~sa.exists().where(_OWN, checks.c.kind != CheckKind.IMPORT.value)
)

_OLDEST_FIRST = (results.c.created, results.c.id)
_ROWS = (
    sa.select(
        results.c.id,
        results.c.run_id,
        results.c.combination_id,
        results.c.image_id,
        results.c.verdict,
        results.c.failed_check,
        results.c.error,
        results.c.duration,
        results.c.backend,
        results.c.created,
        runs.c.base,
        runs.c.image,
        runs.c.strategy,
        runs.c.matrix_name,
        combinations.c.data,
        _DEEP.label("deep"),
        _IMPORTS_ONLY.label("imports_only"),
    )
    .join(runs, runs.c.id == results.c.run_id)
    .join(combinations, combinations.c.id == results.c.combination_id)
)


def _result_row(row: Any) -> ResultRow:  # a row of _ROWS
    return ResultRow(
        id=row.id,
        run_id=row.run_id,
        combination_id=row.combination_id,
        label=Combo.from_json(row.data).label(),
        base=row.base,
        image=row.image,
        image_id=row.image_id,
        verdict=Verdict(row.verdict),
        failed_check=row.failed_check,
        error=row.error,
        duration=row.duration,
        backend=row.backend,
        created=utc(row.created),
        depth=_depth(row),
        origin=_origin(row.strategy, row.matrix_name),
    )


def _depth(row: Any) -> Depth:  # a row with the labels "deep" and "imports_only"
    return Depth.DEEP if row.deep else Depth.IMPORT if row.imports_only else Depth.SMOKE


def _histories(rows: Iterable[Any]) -> list[list[ResultRow]]:
    """Rows of ``_ROWS`` (oldest first) by combination and image, outranked passes marked."""
    grouped: dict[tuple[str, str | None], list[ResultRow]] = {}
    for row in rows:
        result = _result_row(row)
        grouped.setdefault((result.combination_id, result.image_id), []).append(result)
    for history in grouped.values():
        for i, outranking in outrankings(history).items():
            history[i] = dataclasses.replace(history[i], outranking=outranking)
    return list(grouped.values())


def _origin(strategy: str | None, matrix: str | None) -> str:
    """What recorded a result: its run's kind (a matrix strategy is a scan)."""
    if strategy in ("nightly", "bisect", "deep"):
        return strategy
    if strategy is not None:
        return "scan"
    return matrix or "check"  # calibration records under its own name


def _unpack(data: bytes) -> str:
    return zlib.decompress(data).decode("utf-8", "surrogatepass")


def _latest(conn: sa.Connection, target_or_image: Target | str) -> dict[str, Any]:
    """Each combination's standing result (``standing``) on a target's image (its
    reference when unprobed), or on a base name, image reference or image ID."""
    if isinstance(target_or_image, Target):
        scope = (
            results.c.image_id == target_or_image.image_id
            if target_or_image.image_id
            else runs.c.image == target_or_image.image
        )
    else:
        name = target_or_image
        scope = sa.or_(runs.c.base == name, runs.c.image == name, results.c.image_id == name)
    query = (
        sa.select(
            results.c.id,
            results.c.combination_id,
            results.c.verdict,
            results.c.image_id,
            results.c.created,
            runs.c.base,
            runs.c.image,
            runs.c.matrix_name,
            _DEEP.label("deep"),
            _IMPORTS_ONLY.label("imports_only"),
        )
        .join(runs, runs.c.id == results.c.run_id)
        .where(scope)
        .order_by(*_OLDEST_FIRST)
    )
    by_combination: dict[str, list[Any]] = {}
    for row in conn.execute(query):
        by_combination.setdefault(row.combination_id, []).append(row)
    grouped = by_combination.items()
    held = {c: standing([(Verdict(r.verdict), _depth(r)) for r in rows]) for c, rows in grouped}
    return {c: by_combination[c][i] for c, i in held.items() if i is not None}


def _load_combos(conn: sa.Connection, ids: Sequence[str]) -> dict[str, Combo]:
    found: dict[str, Combo] = {}
    for chunk in chunks(ids):
        query = sa.select(combinations.c.data).where(combinations.c.id.in_(chunk))
        for data in conn.execute(query).scalars():
            combo = Combo.from_json(data)
            found[combo.id] = combo
    return found


def load_results(
    conn: sa.Connection, ids: Sequence[int], *, with_logs: bool = True
) -> list[StoredResult]:
    """Whole results, checks and (unless not ``with_logs``) logs included, in ``ids`` order."""
    rows = conn.execute(
        sa.select(
            results,
            runs.c.base,
            runs.c.image,
            runs.c.strategy,
            runs.c.matrix_name,
            combinations.c.data,
        )
        .join(runs, runs.c.id == results.c.run_id)
        .join(combinations, combinations.c.id == results.c.combination_id)
        .where(results.c.id.in_(ids))
    ).all()
    check_rows: dict[int, list[sa.Row[Any]]] = {}
    for row in conn.execute(
        sa.select(checks).where(checks.c.result_id.in_(ids)).order_by(checks.c.position)
    ):
        check_rows.setdefault(row.result_id, []).append(row)
    log_text: dict[tuple[int, int], str] = {}
    if with_logs:
        query = sa.select(logs).where(logs.c.result_id.in_(ids))
        log_text = {(row.result_id, row.part): _unpack(row.data) for row in conn.execute(query)}
    loaded: dict[int, StoredResult] = {}
    for row in rows:
        result = ComboResult(
            combo=Combo.from_json(row.data),
            verdict=Verdict(row.verdict),
            checks=tuple(
                _check(c, log_text.get((row.id, c.position), ""))
                for c in check_rows.get(row.id, [])
            ),
            error=row.error,
            failed_check=row.failed_check,
            duration=row.duration,
            system_deps=tuple(row.system_deps),
            added_system_deps=tuple(row.added_system_deps),
            backend=row.backend,
            image_id=row.image_id,
            log=log_text.get((row.id, 0), ""),
            notes=tuple(row.notes or ()),
        )
        loaded[row.id] = StoredResult(
            id=row.id,
            uid=row.uid,
            run_id=row.run_id,
            base=row.base,
            image=row.image,
            created=utc(row.created),
            result=result,
            strategy=row.strategy,
            matrix=row.matrix_name,
        )
    return [loaded[i] for i in ids if i in loaded]


__all__ = ["BATCH", "Reader", "chunks", "inputs_text", "load_results", "utc"]
