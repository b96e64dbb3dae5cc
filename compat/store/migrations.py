"""The schema's history: an ordered list of steps, step n taking a database from
version n-1 to n. Each step defines the tables it creates as they were at that
version, so old steps keep working when ``schema.py`` moves on. Never edit a
released step; append a new one."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa

from compat.errors import SchemaTooNew, StoreError
from compat.model import CheckKind
from compat.store.schema import schema_version

Step = Callable[[sa.Connection], None]

# Any fixed 64-bit number: serialises concurrent migrations on one PostgreSQL database.
_PG_LOCK_KEY = 0x636F6D706174  # "compat"


def _when() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _v1_results(conn: sa.Connection) -> None:
    """Runs, targets, combinations with their pins, results, checks and logs."""
    md = sa.MetaData()
    sa.Table(
        "targets",
        md,
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("image", sa.Text, nullable=False),
        sa.Column("image_id", sa.Text),
        sa.Column("python", sa.Text, nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
    )
    sa.Table(
        "runs",
        md,
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("started", _when(), nullable=False),
        sa.Column("finished", _when()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("compat_version", sa.Text, nullable=False),
        sa.Column("matrix_name", sa.Text),
        sa.Column("matrix_path", sa.Text),
        sa.Column("strategy", sa.Text),
        sa.Column("base", sa.Text, nullable=False),
        sa.Column("image", sa.Text, nullable=False),
        sa.Column("image_id", sa.Text),
        sa.Column("target_key", sa.Text, sa.ForeignKey("targets.key"), nullable=False),
        sa.Column("backend", sa.Text, nullable=False),
    )
    sa.Table(
        "combinations",
        md,
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("target_key", sa.Text, nullable=False, index=True),
        sa.Column("data", sa.JSON, nullable=False),
    )
    sa.Table(
        "pins",
        md,
        sa.Column(
            "combination_id",
            sa.String(32),
            sa.ForeignKey("combinations.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("version", sa.Text, nullable=False),
        sa.Column("sha256", sa.Text, nullable=False),
        sa.Column("filename", sa.Text, nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Index("ix_pins_name_version", "name", "version"),
    )
    sa.Table(
        "results",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("uid", sa.String(32), nullable=False, unique=True),
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), nullable=False, index=True),
        sa.Column(
            "combination_id", sa.String(32), sa.ForeignKey("combinations.id"), nullable=False
        ),
        sa.Column("image_id", sa.Text),
        sa.Column("verdict", sa.String(32), nullable=False),
        sa.Column("duration", sa.Float, nullable=False),
        sa.Column("failed_check", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("system_deps", sa.JSON, nullable=False),
        sa.Column("added_system_deps", sa.JSON, nullable=False),
        sa.Column("backend", sa.Text, nullable=False),
        sa.Column("created", _when(), nullable=False),
        sa.Index("ix_results_combination_image", "combination_id", "image_id"),
    )
    sa.Table(
        "checks",
        md,
        sa.Column(
            "result_id",
            sa.Integer,
            sa.ForeignKey("results.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("position", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("verdict", sa.String(32), nullable=False),
        sa.Column("duration", sa.Float, nullable=False),
        sa.Column("error", sa.Text),
    )
    sa.Table(
        "logs",
        md,
        sa.Column(
            "result_id",
            sa.Integer,
            sa.ForeignKey("results.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("part", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    md.create_all(conn)


def _v2_builds_sizes_shards(conn: sa.Connection) -> None:
    """Built wheels, image sizes, and the shard a run was one slice of."""
    conn.execute(sa.text("ALTER TABLE runs ADD COLUMN shard TEXT"))
    md = sa.MetaData()
    # Only for the foreign key below to resolve; not created here.
    sa.Table("runs", md, sa.Column("id", sa.String(32), primary_key=True))
    builds = sa.Table(
        "builds",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("uid", sa.String(32), nullable=False, unique=True),
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id")),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("version", sa.Text, nullable=False),
        sa.Column("sdist_sha256", sa.Text, nullable=False),
        sa.Column("image_id", sa.Text, nullable=False),
        sa.Column("wheel_sha256", sa.Text),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.Column("duration", sa.Float, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("created", _when(), nullable=False),
        sa.Index("ix_builds_sdist_image", "sdist_sha256", "image_id"),
    )
    sizes = sa.Table(
        "image_sizes",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("uid", sa.String(32), nullable=False, unique=True),
        sa.Column("base", sa.Text, nullable=False),
        sa.Column("image", sa.Text, nullable=False),
        sa.Column("image_id", sa.Text, nullable=False),
        sa.Column("total_size", sa.BigInteger, nullable=False),
        sa.Column("added_size", sa.BigInteger, nullable=False),
        sa.Column("lock_hash", sa.Text),
        sa.Column("measured", _when(), nullable=False),
    )
    md.create_all(conn, tables=[builds, sizes])


def _v3_seen_and_incompatibilities(conn: sa.Connection) -> None:
    """Versions a nightly run has seen on the index, and known incompatibilities."""
    md = sa.MetaData()
    seen = sa.Table(
        "seen_versions",
        md,
        sa.Column("scope", sa.Text, primary_key=True),  # a base, or a matrix name
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("version", sa.Text, primary_key=True),
        sa.Column("first_seen", _when(), nullable=False),
    )
    incompatible = sa.Table(
        "incompatibilities",
        md,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("uid", sa.String(32), nullable=False, unique=True),
        sa.Column("base", sa.Text, nullable=False),
        sa.Column("image_id", sa.Text),
        sa.Column("packages", sa.JSON, nullable=False),  # {name: version}
        sa.Column("verdict", sa.String(32), nullable=False),
        sa.Column("explanation", sa.Text, nullable=False),
        sa.Column("evidence", sa.JSON, nullable=False),  # result ids
        sa.Column("created", _when(), nullable=False),
    )
    md.create_all(conn, tables=[seen, incompatible])


def _v4_drop_builds(conn: sa.Connection) -> None:
    """Wheel builds were never recorded here (they live beside the wheelhouse): the
    empty table goes."""
    conn.execute(sa.text("DROP TABLE builds"))


def _v5_deep_baselines(conn: sa.Connection) -> None:
    """The deep tier's baseline outcomes, per test module, cached by (dependent
    release, baseline pins, image ID) so that a scan pays for each baseline once."""
    md = sa.MetaData()
    sa.Table(
        "deep_baselines",
        md,
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("module", sa.Text, primary_key=True),
        sa.Column("dependent", sa.Text, nullable=False),
        sa.Column("version", sa.Text, nullable=False),
        sa.Column("image_id", sa.Text, nullable=False),
        sa.Column("pins", sa.JSON, nullable=False),
        sa.Column("outcomes", sa.JSON, nullable=False),
        sa.Column("created", _when(), nullable=False),
    )
    md.create_all(conn)


def _v6_result_notes(conn: sa.Connection) -> None:
    """What a verdict holds under (a wheel built without OpenMP...): NULL for older
    results, which had none."""
    conn.execute(sa.text("ALTER TABLE results ADD COLUMN notes JSON"))


def _v7_image_system_packages(conn: sa.Connection) -> None:
    """The system packages each image is known to need, learnt from the results that
    ran with them: the ones already recorded teach it too."""
    md = sa.MetaData()
    table = sa.Table(
        "image_system_packages",
        md,
        sa.Column("image_id", sa.Text, primary_key=True),
        sa.Column("package", sa.Text, primary_key=True),
        sa.Column("learned", _when(), nullable=False),
        sa.Column("result_uid", sa.String(32)),
    )
    md.create_all(conn)
    results = sa.table(
        "results",
        sa.column("uid", sa.String),
        sa.column("image_id", sa.Text),
        sa.column("created", _when()),
        sa.column("added_system_deps", sa.JSON),
    )
    learned: dict[tuple[str, str], dict[str, object]] = {}
    query = (
        sa.select(results.c.uid, results.c.image_id, results.c.created, results.c.added_system_deps)
        .where(results.c.image_id.is_not(None))
        .order_by(results.c.created)
    )
    for uid, image_id, created, added in conn.execute(query):
        for package in added or ():
            learned.setdefault(
                (image_id, package),
                {"image_id": image_id, "package": package, "learned": created, "result_uid": uid},
            )
    if learned:
        conn.execute(sa.insert(table), list(learned.values()))


def _v8_check_inputs(conn: sa.Connection) -> None:
    """What each check imported and the key its outcome may be reused under, and
    for a reused outcome the result that ran it: NULL for older checks, which
    were never reused and are not reusable. The keys whose kept outcome a rerun
    contradicted."""
    conn.execute(sa.text("ALTER TABLE checks ADD COLUMN inputs TEXT"))
    conn.execute(sa.text("ALTER TABLE checks ADD COLUMN reuse_key VARCHAR(64)"))
    conn.execute(sa.text("ALTER TABLE checks ADD COLUMN reused_from VARCHAR(32)"))
    conn.execute(sa.text("CREATE INDEX ix_checks_reuse_key ON checks (reuse_key)"))
    md = sa.MetaData()
    sa.Table(
        "reuse_disagreements",
        md,
        sa.Column("reuse_key", sa.String(64), primary_key=True),
        sa.Column("check_name", sa.Text, nullable=False),
        sa.Column("kept_from", sa.String(32), nullable=False),
        sa.Column("kept_verdict", sa.String(32), nullable=False),
        sa.Column("found_verdict", sa.String(32), nullable=False),
        sa.Column("found", _when(), nullable=False),
    )
    md.create_all(conn)


def _v9_check_kinds(conn: sa.Connection) -> None:
    """What each check is (import, smoke, user, build, deep, runner), a value of its
    own: the checks already recorded get the kind their names always implied."""
    # NOT NULL needs a default for the rows already there; every writer sets the kind
    conn.execute(sa.text("ALTER TABLE checks ADD COLUMN kind VARCHAR(16) NOT NULL DEFAULT 'smoke'"))
    checks = sa.table("checks", sa.column("name", sa.Text), sa.column("kind", sa.String))
    names: dict[CheckKind, list[str]] = {}
    for (name,) in conn.execute(sa.select(checks.c.name).distinct()):
        names.setdefault(CheckKind.of_legacy_name(name), []).append(name)
    names.pop(CheckKind.SMOKE, None)
    for kind, named in names.items():
        for start in range(0, len(named), 500):
            conn.execute(
                sa.update(checks)
                .where(checks.c.name.in_(named[start : start + 500]))
                .values(kind=kind.value)
            )
    if conn.dialect.name == "postgresql":  # SQLite cannot drop a column's default
        conn.execute(sa.text("ALTER TABLE checks ALTER COLUMN kind DROP DEFAULT"))


def _v10_deep_runs(conn: sa.Connection) -> None:
    """A combination's own deep run gets a table of its own; the runs kept among the
    baselines under the module name "*run*" are left there unused (a cache: each
    runs once more)."""
    md = sa.MetaData()
    sa.Table(
        "deep_runs",
        md,
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("image_id", sa.Text, nullable=False),
        sa.Column("pins", sa.JSON, nullable=False),
        sa.Column("events", sa.JSON, nullable=False),
        sa.Column("created", _when(), nullable=False),
    )
    md.create_all(conn)


def _v11_deep_modules(conn: sa.Connection) -> None:
    """A deep run's test modules kept one by one, by what they imported."""
    md = sa.MetaData()
    sa.Table(
        "deep_modules",
        md,
        sa.Column("context", sa.String(64), primary_key=True),
        sa.Column("module", sa.Text, primary_key=True),
        sa.Column("inputs_key", sa.String(64), primary_key=True),
        sa.Column("dependent", sa.Text, nullable=False),
        sa.Column("inputs", sa.JSON, nullable=False),
        sa.Column("events", sa.JSON, nullable=False),
        sa.Column("created", _when(), nullable=False),
    )
    md.create_all(conn)


def _v12_incompatibility_ranges(conn: sa.Connection) -> None:
    """A known incompatibility may name version ranges beside the pair bisection
    found; the ones recorded before stay exact pairs (no range)."""
    kind = sa.JSON().compile(dialect=conn.dialect)
    conn.execute(sa.text(f"ALTER TABLE incompatibilities ADD COLUMN ranges {kind}"))


STEPS: tuple[Step, ...] = (
    _v1_results,
    _v2_builds_sizes_shards,
    _v3_seen_and_incompatibilities,
    _v4_drop_builds,
    _v5_deep_baselines,
    _v6_result_notes,
    _v7_image_system_packages,
    _v8_check_inputs,
    _v9_check_kinds,
    _v10_deep_runs,
    _v11_deep_modules,
    _v12_incompatibility_ranges,
)
LATEST = len(STEPS)

_OURS = frozenset({"runs", "targets", "combinations", "results"})


def current_version(conn: sa.Connection) -> int:
    """The version a database is at; 0 for an empty one."""
    if not sa.inspect(conn).has_table(schema_version.name):
        return 0
    found = conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar_one()
    return int(found or 0)


def check_version(found: int, url: str) -> None:
    if found > LATEST:
        raise SchemaTooNew(url, found, LATEST)


def migrate(conn: sa.Connection, *, url: str, now: datetime) -> int:
    """Bring the database to ``LATEST`` inside the caller's (write) transaction, so
    that a failed step leaves it as it was. Returns the version it was at."""
    if conn.dialect.name == "postgresql":
        # Two workers opening a new database at once: the second waits, then finds
        # nothing left to do.
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
    found = current_version(conn)
    check_version(found, url)
    if found == 0:
        present = _OURS & set(sa.inspect(conn).get_table_names())
        if present:
            raise StoreError(
                f"{url} has tables named {', '.join(sorted(present))} but no schema_version "
                "table: it is not a compat results database. Point --db (or COMPAT_DB) "
                "elsewhere."
            )
        # Never changes: it is how every version, past and future, is read.
        schema_version.create(conn)
    for version in range(found + 1, LATEST + 1):
        STEPS[version - 1](conn)
        conn.execute(sa.insert(schema_version).values(version=version, applied=now))
    return found
