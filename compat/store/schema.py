"""The tables as they are now: what the queries use. A new database gets them by
running every migration in ``migrations.py``; a test checks the two agree."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()


def _when() -> sa.DateTime:
    # Always written in UTC; SQLite keeps no offset, so reads add UTC back.
    return sa.DateTime(timezone=True)


schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("applied", _when(), nullable=False),
)

targets = sa.Table(
    "targets",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),  # Target.key
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("image", sa.Text, nullable=False),
    sa.Column("image_id", sa.Text),
    sa.Column("python", sa.Text, nullable=False),
    sa.Column("data", sa.JSON, nullable=False),  # Target.to_json()
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),  # uuid4 hex: unique across databases
    sa.Column("started", _when(), nullable=False),
    sa.Column("finished", _when()),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("compat_version", sa.Text, nullable=False),
    sa.Column("matrix_name", sa.Text),
    sa.Column("matrix_path", sa.Text),
    sa.Column("strategy", sa.Text),
    sa.Column("base", sa.Text, nullable=False),  # Target.name
    sa.Column("image", sa.Text, nullable=False),
    sa.Column("image_id", sa.Text),
    sa.Column("target_key", sa.Text, sa.ForeignKey("targets.key"), nullable=False),
    sa.Column("backend", sa.Text, nullable=False),
    sa.Column("shard", sa.Text),  # "K/N" for one slice of a sharded run (v2)
)

combinations = sa.Table(
    "combinations",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),  # Combo.id
    sa.Column("target_key", sa.Text, nullable=False, index=True),
    sa.Column("data", sa.JSON, nullable=False),  # Combo.to_json(): pins with hashes
)

pins = sa.Table(
    "pins",
    metadata,
    sa.Column(
        "combination_id",
        sa.String(32),
        sa.ForeignKey("combinations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("name", sa.Text, primary_key=True),  # normalized
    sa.Column("version", sa.Text, nullable=False),
    sa.Column("sha256", sa.Text, nullable=False),
    sa.Column("filename", sa.Text, nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Index("ix_pins_name_version", "name", "version"),
)

results = sa.Table(
    "results",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),  # short, for people; local to a database
    sa.Column("uid", sa.String(32), nullable=False, unique=True),  # identity across databases
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), nullable=False, index=True),
    sa.Column("combination_id", sa.String(32), sa.ForeignKey("combinations.id"), nullable=False),
    sa.Column("image_id", sa.Text),
    sa.Column("verdict", sa.String(32), nullable=False),
    sa.Column("duration", sa.Float, nullable=False),
    sa.Column("failed_check", sa.Text),
    sa.Column("error", sa.Text),  # first line of the first failure
    sa.Column("system_deps", sa.JSON, nullable=False),
    sa.Column("added_system_deps", sa.JSON, nullable=False),
    sa.Column("backend", sa.Text, nullable=False),
    sa.Column("created", _when(), nullable=False),
    sa.Column("notes", sa.JSON),  # what the verdict holds under; NULL before schema v6
    sa.Index("ix_results_combination_image", "combination_id", "image_id"),
)

checks = sa.Table(
    "checks",
    metadata,
    sa.Column(
        "result_id", sa.Integer, sa.ForeignKey("results.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("position", sa.Integer, primary_key=True, autoincrement=False),  # from 1
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # CheckKind (v9)
    sa.Column("verdict", sa.String(32), nullable=False),
    sa.Column("duration", sa.Float, nullable=False),
    sa.Column("error", sa.Text),
    # what the check imported: JSON {name: version} with sorted keys, text so that
    # equal inputs compare equal in SQL; NULL when not known (and before v8)
    sa.Column("inputs", sa.Text),
    sa.Column("reuse_key", sa.String(64), index=True),  # compat.harness.reuse
    sa.Column("reused_from", sa.String(32)),  # the uid of the result that ran it
)

# Logs live apart so that listing results never drags them along.
logs = sa.Table(
    "logs",
    metadata,
    sa.Column(
        "result_id", sa.Integer, sa.ForeignKey("results.id", ondelete="CASCADE"), primary_key=True
    ),
    # 0: the combination's log; n: the log of the check at position n
    sa.Column("part", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("size", sa.Integer, nullable=False),  # bytes before compression
    sa.Column("data", sa.LargeBinary, nullable=False),  # zlib
)

image_sizes = sa.Table(
    "image_sizes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("uid", sa.String(32), nullable=False, unique=True),
    sa.Column("base", sa.Text, nullable=False),
    sa.Column("image", sa.Text, nullable=False),
    sa.Column("image_id", sa.Text, nullable=False),
    sa.Column("total_size", sa.BigInteger, nullable=False),  # bytes
    sa.Column("added_size", sa.BigInteger, nullable=False),  # bytes on top of the base
    sa.Column("lock_hash", sa.Text),  # sha256 of the lockfile that made it
    sa.Column("measured", _when(), nullable=False),
)

seen_versions = sa.Table(
    "seen_versions",
    metadata,
    sa.Column("scope", sa.Text, primary_key=True),  # a base, or a matrix name (v3)
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("version", sa.Text, primary_key=True),
    sa.Column("first_seen", _when(), nullable=False),
)

incompatibilities = sa.Table(
    "incompatibilities",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("uid", sa.String(32), nullable=False, unique=True),
    sa.Column("base", sa.Text, nullable=False),
    sa.Column("image_id", sa.Text),
    sa.Column("packages", sa.JSON, nullable=False),  # {name: version}: together they fail
    sa.Column("verdict", sa.String(32), nullable=False),
    sa.Column("explanation", sa.Text, nullable=False),
    sa.Column("evidence", sa.JSON, nullable=False),  # result ids
    sa.Column("created", _when(), nullable=False),
    # {name: specifier} (v12): the releases around the pair that fail the same way
    sa.Column("ranges", sa.JSON),
)

deep_baselines = sa.Table(
    "deep_baselines",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),  # Baseline.cache_key(image_id)
    sa.Column("module", sa.Text, primary_key=True),  # a test module's path
    sa.Column("dependent", sa.Text, nullable=False),
    sa.Column("version", sa.Text, nullable=False),
    sa.Column("image_id", sa.Text, nullable=False),
    sa.Column("pins", sa.JSON, nullable=False),  # the baseline's pins, "name==version"
    sa.Column("outcomes", sa.JSON, nullable=False),  # TestOutcome.to_json() of each test
    sa.Column("created", _when(), nullable=False),
)

# A combination's own deep run, kept whole (the runner's events) under its run key
# (``compat.deep.keys.run_key``), so a warm rerun of the same question runs no test
# (v10; kept before in deep_baselines under the module name "*run*", now unused).
deep_runs = sa.Table(
    "deep_runs",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("image_id", sa.Text, nullable=False),
    sa.Column("pins", sa.JSON, nullable=False),  # the combination's pins, "name==version"
    sa.Column("events", sa.JSON, nullable=False),  # the runner's JSON events, in order
    sa.Column("created", _when(), nullable=False),
)

# One test module's outcomes from a combination's own deep run, kept by what decides
# them (v11): ``context`` (``compat.deep.keys.module_context``: image, test layer,
# settings, runner code, the names installed) and ``inputs``, the version and file of
# every distribution its pytest processes imported. Another combination whose pins
# match ``inputs`` in the same context takes them without running the module.
deep_modules = sa.Table(
    "deep_modules",
    metadata,
    sa.Column("context", sa.String(64), primary_key=True),
    sa.Column("module", sa.Text, primary_key=True),  # a test module's path
    sa.Column("inputs_key", sa.String(64), primary_key=True),  # a digest of ``inputs``
    sa.Column("dependent", sa.Text, nullable=False),
    sa.Column("inputs", sa.JSON, nullable=False),  # {name: "version sha256"}
    sa.Column("events", sa.JSON, nullable=False),  # the module's test and module events
    sa.Column("created", _when(), nullable=False),
)

# What an image is known to need: the distro packages that provided its missing shared
# libraries, learnt from a result that ran with them (v7). Installed on every later run
# on the image unless --no-system-deps.
image_system_packages = sa.Table(
    "image_system_packages",
    metadata,
    sa.Column("image_id", sa.Text, primary_key=True),  # the base image's ID
    sa.Column("package", sa.Text, primary_key=True),
    sa.Column("learned", _when(), nullable=False),
    sa.Column("result_uid", sa.String(32)),  # the result it was learnt from
)

# A kept check outcome that a rerun contradicted (--verify-reuse, v8): nothing is
# reused under its key again. A change to the check's code makes a new key.
reuse_disagreements = sa.Table(
    "reuse_disagreements",
    metadata,
    sa.Column("reuse_key", sa.String(64), primary_key=True),
    sa.Column("check_name", sa.Text, nullable=False),
    sa.Column("kept_from", sa.String(32), nullable=False),  # the uid of the result kept
    sa.Column("kept_verdict", sa.String(32), nullable=False),
    sa.Column("found_verdict", sa.String(32), nullable=False),  # what the rerun gave
    sa.Column("found", _when(), nullable=False),
)
