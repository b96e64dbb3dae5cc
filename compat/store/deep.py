"""The deep tier's cache in the results database: a combination's own runs
(``deep_runs``), their test modules by what each imported (``deep_modules``) and the
baselines' outcomes per test module (``deep_baselines``), each under the key the
deep tier computes (``compat.deep.keys``)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from compat.store.engine import Database, insert_missing
from compat.store.schema import deep_baselines, deep_modules, deep_runs, reuse_disagreements


def _inputs_key(inputs: Mapping[str, str]) -> str:
    return hashlib.sha256(json.dumps(dict(inputs), sort_keys=True).encode()).hexdigest()[:24]


def _module_key(context: str, module: str, inputs: Mapping[str, str]) -> str:
    """A kept test module's key among the reuse disagreements."""
    return hashlib.sha256(f"{context}\n{module}\n{_inputs_key(inputs)}".encode()).hexdigest()


def _replace(conn: sa.Connection, table: sa.Table, **row: Any) -> None:
    """Write ``row`` into ``table``, in place of the row with the same primary key."""
    same = [column == row[column.name] for column in table.primary_key.columns]
    conn.execute(sa.delete(table).where(*same))
    conn.execute(sa.insert(table).values(**row, created=datetime.now(UTC)))


class DeepCache(Database):
    """The deep tier's runs, kept so that a warm rerun of the same question costs no
    test run (a cache: nothing else reads it)."""

    def deep_run(self, key: str) -> list[dict[str, Any]] | None:
        """The runner's events of a combination's own deep run kept under ``key``
        (see ``record_deep_run``), or None."""
        query = sa.select(deep_runs.c.events).where(deep_runs.c.key == key)
        with self.reading() as conn:
            events = conn.execute(query).scalar_one_or_none()
        return None if events is None else [dict(e) for e in events]

    def record_deep_run(
        self, *, key: str, image_id: str, pins: Sequence[str], events: Sequence[Mapping[str, Any]]
    ) -> None:
        """Keep a combination's own finished deep run (its runner's JSON events)
        under ``key``; one kept before under it is replaced."""
        with self.writing() as conn:
            _replace(
                conn,
                deep_runs,
                key=key,
                image_id=image_id,
                pins=list(pins),
                events=[dict(e) for e in events],
            )

    def deep_modules(self, context: str) -> list[tuple[str, dict[str, str], list[dict[str, Any]]]]:
        """The test modules kept in ``context``: (module, inputs, events), newest
        first (see ``record_deep_modules``); none that a rerun contradicted
        (``record_deep_disagreement``)."""
        query = (
            sa.select(deep_modules.c.module, deep_modules.c.inputs, deep_modules.c.events)
            .where(deep_modules.c.context == context)
            .order_by(deep_modules.c.created.desc())
        )
        with self.reading() as conn:
            rows = [
                (row.module, dict(row.inputs), [dict(e) for e in row.events])
                for row in conn.execute(query)
            ]
            keys = {_module_key(context, module, inputs) for module, inputs, _ in rows}
            contradicted = set(
                conn.execute(
                    sa.select(reuse_disagreements.c.reuse_key).where(
                        reuse_disagreements.c.reuse_key.in_(keys)
                    )
                ).scalars()
            )
        return [r for r in rows if _module_key(context, r[0], r[1]) not in contradicted]

    def record_deep_disagreement(
        self, *, context: str, module: str, inputs: Mapping[str, str], kept: str, found: str
    ) -> None:
        """A rerun of a kept test module (``--verify-reuse``) said ``found`` where
        the kept outcome said ``kept``: it is not reused under its inputs again."""
        with self.writing() as conn:
            insert_missing(
                conn,
                reuse_disagreements,
                {
                    "reuse_key": _module_key(context, module, inputs),
                    "check_name": f"deep {module}",
                    "kept_from": context[:32],
                    "kept_verdict": kept[:32],
                    "found_verdict": found[:32],
                    "found": datetime.now(UTC),
                },
            )

    def record_deep_modules(
        self,
        *,
        context: str,
        modules: Sequence[tuple[str, str, Mapping[str, str], Sequence[Mapping[str, Any]]]],
    ) -> None:
        """Keep test modules of a finished deep run in ``context``: (dependent,
        module, inputs, events) each; one kept before with the same inputs is
        replaced."""
        with self.writing() as conn:
            for dependent, module, inputs, events in modules:
                _replace(
                    conn,
                    deep_modules,
                    context=context,
                    module=module,
                    inputs_key=_inputs_key(inputs),
                    dependent=dependent,
                    inputs=dict(inputs),
                    events=[dict(e) for e in events],
                )

    def deep_baseline(self, key: str) -> dict[str, list[dict[str, Any]]]:
        """The deep tier's cached baseline outcomes under ``key``: module path ->
        its tests' outcomes as JSON (see ``record_deep_baseline``)."""
        query = sa.select(deep_baselines.c.module, deep_baselines.c.outcomes).where(
            deep_baselines.c.key == key
        )
        with self.reading() as conn:
            return {row.module: list(row.outcomes) for row in conn.execute(query)}

    def record_deep_baseline(
        self,
        *,
        key: str,
        dependent: str,
        version: str,
        image_id: str,
        pins: Sequence[str],
        modules: Mapping[str, Sequence[Mapping[str, Any]]],
    ) -> None:
        """Cache the deep tier's baseline outcomes of ``modules`` (path -> the
        tests' outcomes as JSON) under ``key``; a module already cached is
        replaced."""
        with self.writing() as conn:
            for module, outcomes in modules.items():
                _replace(
                    conn,
                    deep_baselines,
                    key=key,
                    module=module,
                    dependent=dependent,
                    version=version,
                    image_id=image_id,
                    pins=list(pins),
                    outcomes=[dict(o) for o in outcomes],
                )


__all__ = ["DeepCache"]
