"""The deal log in PostgreSQL: a ``deals`` table whose rows are deals.csv's rows.

Against the real server that test_recorders_postgres.py starts (initdb, pg_ctl on a free
loopback port); skipped, with the reason shown, only where psycopg or the server is missing.
"""

from __future__ import annotations

import pytest

from apis_emulator.engine.deals import DEAL_COLUMNS
from recorders_helpers import read_csv
from test_recorders_deals import as_csv_cells, csv_deals, june, sharing_run
from test_recorders_postgres import database, postgres_url

psycopg = pytest.importorskip("psycopg", reason="psycopg 3 is not installed "
                                                "(pip install 'apis-emulator[postgres]')")

__all__ = ["database", "postgres_url", "june"]  # fixtures, used by name


def test_postgresql_deals_table_rows_equal_the_deal_log(june, tmp_path, database):
    """Every deals.csv row is a row of ``deals`` with the run's id, cell for cell; the day's
    shared energy in daily_summary is summary.csv's."""
    result = sharing_run(june, tmp_path, database)
    assert result.files["database"] == database
    names = ", ".join(f'"{c}"' for c in DEAL_COLUMNS)
    with psycopg.connect(database) as db:
        (run_id,), = db.execute("SELECT run_id FROM runs").fetchall()
        rows = db.execute(f"SELECT {names} FROM deals WHERE run_id = %s ORDER BY deal_id",
                          (run_id,)).fetchall()
        shared = db.execute("SELECT shared_in, shared_out, deals FROM daily_summary "
                            "WHERE run_id = %s", (run_id,)).fetchall()
        types = dict(db.execute("SELECT column_name, data_type FROM information_schema.columns "
                                "WHERE table_name = 'deals'").fetchall())
    expected = csv_deals(tmp_path)
    assert len(expected) >= 10
    assert [as_csv_cells(r) for r in rows] == expected
    summary = read_csv(tmp_path / "summary.csv")
    day = dict(zip(summary[0], summary[1], strict=True))
    assert shared == [(float(day["shared_in"]), float(day["shared_out"]), float(day["deals"]))]
    assert (types["started"], types["deal_wh"], types["cumulated_wh"]) == (
        "timestamp without time zone", "bigint", "double precision")


def test_postgresql_tables_of_an_earlier_version_get_the_new_columns(june, tmp_path, database):
    """A daily_summary without the sharing columns: they are added and filled."""
    from apis_emulator.recorders import SUMMARY_COLUMNS

    old = SUMMARY_COLUMNS[1:SUMMARY_COLUMNS.index("shared_in")]
    with psycopg.connect(database) as db:
        db.execute("CREATE TABLE daily_summary (run_id BIGINT NOT NULL, day DATE NOT NULL, "
                   + ", ".join(f'"{c}" DOUBLE PRECISION' for c in old)
                   + ", PRIMARY KEY (run_id, day))")
    sharing_run(june, tmp_path, database)
    day = dict(zip(*read_csv(tmp_path / "summary.csv")[:2], strict=True))
    with psycopg.connect(database) as db:
        got = db.execute("SELECT pv, deals FROM daily_summary").fetchall()
    assert got == [(float(day["pv"]), float(day["deals"]))]
