"""pgdigest.table_digest (SQL, record_send of canonical values) gives the same digest as
the Python canonical records, at timestamp range edges, for timestamp and timestamptz
columns, under a session time zone far from UTC."""
import pytest

from pgcutover.canonical import Digest, ms_to_copy, row_record
from pgcutover.pgconn import connect
from pgcutover.pgdigest import table_digest
from targetlib import run_sql

pytestmark = pytest.mark.pg

E12, E13 = 10**12, 10**13
TS = [E12 - 1, E12, E12 + 1, E13 - 2, E13 - 1, E13, E13 + 1, -1, 0, 999,
      -62135596800000, 253402300799999, 1764028800123, None]


@pytest.mark.parametrize("tz", ["UTC", "Pacific/Chatham"])
def test_sql_digest_matches_python_at_edges(pg_db, tz):
    cols = [("ts", "timestamp", "timestamp(3)"), ("tz", "timestamp", "timestamptz"),
            ("f", "float", "double precision"), ("b", "boolean", "boolean"),
            ("y", "bytea", "bytea")]
    logicals = [c[1] for c in cols]
    rows = [(ms, ms, None if ms is None else ms / 7, None if ms is None else ms % 2,
             None if ms is None else bytes(range(abs(ms) % 5))) for ms in TS]
    d = Digest()
    for r in rows:
        d.add(row_record(logicals, r))
    run_sql(pg_db, "CREATE TABLE x (" + ", ".join(f'"{c}" {t}' for c, _, t in cols) + ")")
    for ms, _, f, b, y in rows:
        ts = None if ms is None else ms_to_copy(ms)
        run_sql(pg_db, "INSERT INTO x VALUES (%s, %s, %s::float8, %s, %s)",
                [ts, ts, None if f is None else repr(f), None if b is None else bool(b), y])
    conn = connect(pg_db)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT set_config('TimeZone', %s, false)", (tz,))
            count, digest = table_digest(cur, "public", "x",
                                         [{"name": c, "logical": lg} for c, lg, _ in cols],
                                         {c: t for c, _, t in cols})
    finally:
        conn.close()
    assert (count, digest) == (len(rows), d.value())
