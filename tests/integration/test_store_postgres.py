"""The results database on a real PostgreSQL server: the same tests as on SQLite
(imported from tests/unit/store/test_store.py), each in a schema of its own.

The server comes from COMPAT_TEST_POSTGRES_URL (``eval "$(bash .ci/postgres.sh)"``
sets it up); without it these tests fail in CI and are skipped elsewhere.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from compat.store import Store
from tests.helpers.results import make_combo, make_target, passed
from tests.unit.harness.test_check_reuse import (  # noqa: F401  (pytest collects them here too)
    kept,
    test_a_failure_is_reused_as_that_failure_and_a_timeout_or_crash_never,
    test_the_latest_outcome_wins_and_a_reuse_names_the_result_that_ran_it,
)
from tests.unit.store.test_store import (  # noqa: F401  (pytest collects them here too)
    MakeUrl,
    db_url,
    store,
    test_a_database_from_a_newer_compat_is_refused,
    test_a_database_that_is_not_ours_is_refused,
    test_a_killed_writer_loses_no_finished_result,
    test_a_result_comes_back_whole,
    test_a_result_without_image_id_takes_the_targets,
    test_a_v6_database_learns_from_the_results_it_holds,
    test_an_image_remembers_the_system_packages_its_results_ran_with,
    test_an_older_database_is_migrated_forward,
    test_done_means_tested_on_the_same_image_id,
    test_export_then_import_twice_adds_nothing_the_second_time,
    test_filter_todo_handles_long_plans,
    test_image_sizes,
    test_import_refuses_what_is_not_an_export,
    test_known_good_are_the_combinations_whose_latest_verdict_passed,
    test_logs_are_stored_compressed,
    test_merging_shards_copies_each_result_once,
    test_pins_can_be_queried_by_package_and_version,
    test_processes_write_at_once_into_a_new_database,
    test_recording_into_an_unknown_run_fails,
    test_results_list_newest_first_with_filters,
    test_runs_keep_what_was_run_and_how_it_ended,
    test_seen_versions_and_incompatibilities,
    test_the_lock_ranking_over_what_the_store_found,
    test_the_migrated_schema_is_the_schema_the_queries_use,
    test_threads_share_one_store,
)
from tests.unit.store.test_store_ranges import (  # noqa: F401  (pytest collects them here too)
    known,
    test_a_database_from_before_ranges_keeps_its_pairs_exact,
    test_a_pair_bisected_again_with_ranges_gains_them,
    test_a_widened_incompatibility_holds_every_release_in_its_ranges,
)

URL_VARIABLE = "COMPAT_TEST_POSTGRES_URL"


@pytest.fixture(scope="module")
def server_url() -> str:
    url = os.environ.get(URL_VARIABLE, "").strip()
    if not url:
        message = f'{URL_VARIABLE} is not set: run eval "$(bash .ci/postgres.sh)" first'
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs PostgreSQL: {message}")
        pytest.skip(message)
    return url


@pytest.fixture
def make_db_url(server_url: str) -> Iterator[MakeUrl]:
    """Fresh, empty databases: each a schema of its own, dropped afterwards."""
    admin = sa.create_engine(server_url)
    made: list[str] = []

    def make() -> str:
        name = f"compat_test_{uuid.uuid4().hex[:12]}"
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))
        made.append(name)
        url = sa.make_url(server_url).update_query_dict({"options": f"-csearch_path={name}"})
        return url.render_as_string(hide_password=False)

    yield make
    with admin.begin() as conn:
        for name in made:
            conn.execute(sa.text(f'DROP SCHEMA "{name}" CASCADE'))
    admin.dispose()


def test_a_plain_postgresql_url_uses_psycopg_3(make_db_url: MakeUrl) -> None:
    url = make_db_url()
    plain = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with Store.open(plain) as opened:
        assert opened.url.startswith("postgresql+psycopg://")
        assert "***" in opened.url  # the password stays out of messages
        target = make_target()
        run_id = opened.start_run(target, backend="docker")
        opened.record(run_id, target, passed(target, make_combo(target, {"numpy": "2.0.2"})))
    with Store.open(url) as again:
        assert len(again.results()) == 1


def test_text_with_nul_bytes_is_stored(make_db_url: MakeUrl) -> None:
    """PostgreSQL text cannot hold NUL: a crash's first error line may."""
    with Store.open(make_db_url()) as opened:
        target = make_target()
        run_id = opened.start_run(target, backend="docker")
        result = passed(target, make_combo(target, {"numpy": "2.0.2"}))
        crashed = type(result)(
            combo=result.combo,
            verdict=result.verdict,
            error="garbage \x00 in the output",
            log="log with \x00 too",
        )
        stored = opened.get(opened.record(run_id, target, crashed))
        assert stored is not None
        assert stored.result.error == "garbage \ufffd in the output"
        assert stored.result.log == "log with \x00 too"  # logs are bytes: kept exactly
