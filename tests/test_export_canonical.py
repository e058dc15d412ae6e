"""The Python canonical payloads and record cells (canonical.py) against REAL PostgreSQL 15.

For each logical type, values are stored in PostgreSQL the way the importer will
store them and ``p(c)`` of docs/FORMAT.md (or the record_send() of the canonical
value) is computed in SQL; the Python side must produce the identical string/bytes.  Any divergence here would make verify-target report
differences that do not exist (or hide ones that do).
"""
from __future__ import annotations

import math

import psycopg2
import pytest

from pgcutover import canonical

pytestmark = pytest.mark.pg


@pytest.fixture
def cur(pg_db):
    conn = psycopg2.connect(pg_db)
    conn.autocommit = True
    with conn.cursor() as c:
        c.execute("SET TimeZone = 'UTC'")
        c.execute("SET extra_float_digits = 3")
        yield c
    conn.close()


def _pg_payloads(cur, pg_type: str, literals: list[str], expr: str) -> list[str]:
    cur.execute(f"CREATE TEMP TABLE v (i int, c {pg_type})")
    for i, lit in enumerate(literals):
        cur.execute("INSERT INTO v VALUES (%s, %s::" + pg_type + ")", (i, lit))
    cur.execute(f"SELECT {expr.format(c='c')} FROM v ORDER BY i")
    out = [r[0] for r in cur.fetchall()]
    cur.execute("DROP TABLE v")
    return out


JSON_CASES = [
    '{"b": 1, "a": 2}',
    '{"aa": 1, "b": 2, "ccc": 3, "é": 4, "z": 5}',
    '{"a": 1, "a": 2}',
    '{"a": {"x": 1, "x": [1, 2]}, "a": null}',
    '[1.0, 1e2, -0, -0.0, 0.10, 1E-3, 1.5e5, 12e-1, 2.50, 100000000000000000000001]',
    '[1e300, 1.5e-300, -1.25E+3, 1e1001, 1e-1001]',
    '"caf\\u00e9 \\ud83d\\ude00 tab\\t nl\\n \\u0001 \\u001f \\\\ \\" / \\/"',
    '{"nested": {"deep": [[], {}, [{}], {"k": [true, false, null]}]}}',
    '  {"ws" :\t[ 1 ,\n2 ] }  ',
    '"plain"', '123', 'true', 'null', '[]', '{}',
    '{"ключ": "значение", "日本": "語", "a\\u0000b": 1}'.replace('"a\\u0000b": 1', '"x": 1'),
    '{"\\u007f": "\\u007f", "emoji😀": "😀"}',
]


def test_jsonb_text_matches_postgresql(cur):
    pg = _pg_payloads(cur, "jsonb", JSON_CASES, "{c}::jsonb::text")
    assert [canonical.jsonb_text(j) for j in JSON_CASES] == pg


@pytest.mark.parametrize("bad", ['{"a": NaN}', '[Infinity]', '"\\u0000"', '{"a": 1',
                                 '"\\ud800"', "", "01", "[1,]", "{'a': 1}", "1e131072",
                                 "[1e-16384]"])
def test_jsonb_refusals_match_postgresql(cur, bad):
    with pytest.raises(canonical.CellError):
        canonical.jsonb_text(bad)
    with pytest.raises(psycopg2.Error):
        cur.execute("SELECT %s::jsonb", (bad,))


FLOATS = [0.0, -0.0, 1.0, 0.1, -1.5, 1e-300, 5e-324, 1.7976931348623157e308, math.inf,
          -math.inf, 2.0 ** 53, 123456.789, 1 / 3]


def test_float_payload_matches_postgresql(cur):
    lits = [repr(f) for f in FLOATS]
    pg = _pg_payloads(cur, "double precision", lits, "encode(float8send({c}::float8),'hex')")
    assert [canonical.float_payload(f) for f in FLOATS] == pg
    # INTEGER cells of a float column: exact up to 2^53, blocker beyond
    assert canonical.float_payload(2 ** 53) == canonical.float_payload(float(2 ** 53))
    with pytest.raises(canonical.CellError):
        canonical.float_payload(2 ** 53 + 1)


NUMERICS = [0, -0.0, 1.5, 0.1, 2.50, 1e-7, 1e20, 123456789.123456789, -42, 10 ** 30,
            "1.2300", "-0.000", "1e5", "  7.10 ", 12345.678]


def test_numeric_payload_matches_postgresql(cur):
    decs = [canonical.numeric_decimal(v) for v in NUMERICS]
    lits = [canonical.numeric_plain(d) for d in decs]   # what the importer sends
    pg = _pg_payloads(cur, "numeric", lits, "trim_scale({c}::numeric)::text")
    assert [canonical.numeric_payload(d) for d in decs] == pg
    # REAL goes through its shortest repr, never binary expansion
    assert canonical.numeric_payload(canonical.numeric_decimal(0.1)) == "0.1"


def test_numeric_precision_checks():
    from decimal import Decimal
    canonical.check_numeric(Decimal("12.34"), 4, 2)
    with pytest.raises(canonical.CellError):
        canonical.check_numeric(Decimal("123.4"), 4, 2)
    with pytest.raises(canonical.CellError):
        canonical.check_numeric(Decimal("1.234"), 4, 2)
    canonical.check_numeric(Decimal("1.230"), 4, 2)   # trailing zero fits exactly
    with pytest.raises(canonical.CellError):
        canonical.numeric_decimal(math.inf)
    with pytest.raises(canonical.CellError):
        canonical.numeric_decimal("abc")


TIMESTAMPS = [0, 1764028800000, 1764028800123, -1, -62135596800000, 253402300799999,
              "2025-11-25 00:00:00", "2025-11-25T10:11:12.5", "2025-11-25 10:11:12.123Z",
              "2025-11-25 10:11:12.120000", "2025-11-25T01:00:00+02:00",
              "2025-11-24T23:30:00-05:30", "1969-12-31 23:59:59.999"]


def test_timestamp_payload_matches_postgresql(cur):
    ms = [canonical.timestamp_ms(v) for v in TIMESTAMPS]
    lits = [canonical.ms_to_copy(m) for m in ms]          # what the importer sends
    for pg_type in ("timestamp(3)", "timestamptz"):
        pg = _pg_payloads(cur, pg_type, lits, "(extract(epoch from {c})*1000)::bigint::text")
        assert [str(m) for m in ms] == pg


@pytest.mark.parametrize("bad", ["2025-11-25", "2025-13-01 00:00:00", "now",
                                 "2025-11-25 10:11:12.1234", "2025-11-25 10:11:12+2",
                                 "10000-01-01 00:00:00", 253402300800000, 1.5])
def test_timestamp_blockers(bad):
    with pytest.raises(canonical.CellError):
        canonical.timestamp_ms(bad)


def test_text_bool_int_bytea_date_match_postgresql(cur):
    texts = ["", "a", "tab\there", "line\nnew", "back\\slash", "üñí©ødé 😀", "x" * 5000]
    pg = _pg_payloads(cur, "text", texts, "{c}::text")
    assert [canonical.text_payload(t) for t in texts] == pg
    ints = [0, -1, 2 ** 63 - 1, -2 ** 63]
    pg = _pg_payloads(cur, "bigint", [str(i) for i in ints], "{c}::text")
    assert [canonical.integer_payload(i) for i in ints] == pg
    pg = _pg_payloads(cur, "boolean", ["true", "false"],
                      "CASE WHEN {c} THEN 't' ELSE 'f' END")
    assert [canonical.boolean_payload(1), canonical.boolean_payload(0)] == pg
    with pytest.raises(canonical.CellError):
        canonical.boolean_payload(2)
    blobs = [b"", b"\x00\x01\xff", bytes(range(256))]
    pg = _pg_payloads(cur, "bytea", ["\\x" + b.hex() for b in blobs], "encode({c},'hex')")
    assert [canonical.bytea_payload(b) for b in blobs] == pg
    dates = ["2025-11-25", "0001-01-01", "9999-12-31"]
    pg = _pg_payloads(cur, "date", dates, "to_char({c},'YYYY-MM-DD')")
    assert [canonical.date_text(d) for d in dates] == pg


def test_row_digest_matches_postgresql(cur):
    """Whole-table content digest: Python over values == the FORMAT.md SQL query
    (written out here, not taken from pgdigest)."""
    rows = [(1, "a|b", None, 1.5, '{"b":1,"a":[1.0]}'), (2, "", 1, -0.0, None),
            (3, "ü\n", 0, None, '"x"'), (3, "ü\n", 0, None, '"x"')]   # duplicate row
    logicals = ["integer", "text", "boolean", "float", "json"]
    d = canonical.Digest()
    for r in rows:
        d.add(canonical.row_record(logicals, r))
    cur.execute("CREATE TEMP TABLE t (i bigint, s text, b boolean, f float8, j jsonb)")
    for r in rows:
        # floats as text literals: a bare -0.0 literal is numeric and loses its sign
        cur.execute("INSERT INTO t VALUES (%s, %s, %s, %s::float8, %s)",
                    (r[0], r[1], None if r[2] is None else bool(r[2]),
                     None if r[3] is None else repr(r[3]), r[4]))
    cur.execute("SELECT count(*), sum(('x'||substr(h,1,16))::bit(64)::bigint::numeric), "
                "sum(('x'||substr(h,17,16))::bit(64)::bigint::numeric) FROM "
                "(SELECT encode(sha256(record_send(ROW(i::bigint, s::text, b::boolean, "
                "f::float8, j::jsonb))),'hex') AS h FROM t) s")
    n, s1, s2 = cur.fetchone()
    assert canonical.format_digest(n, int(s1), int(s2)) == d.value()


# (logical, SQLite values, PostgreSQL column types the import may store them in)
CELL_CASES = [
    ("integer", [0, -1, 7, 2 ** 63 - 1, -2 ** 63], ["bigint", "numeric(20,0)", "numeric"]),
    ("integer", [0, -1, 2 ** 31 - 1, -2 ** 31], ["integer"]),
    ("boolean", [0, 1], ["boolean"]),
    ("float", [0.0, -0.0, 1.5, 0.1, 1e300, -2.5e-308, 2 ** 53, float("inf")], ["double precision"]),
    ("numeric", [0, -0.0, 0.05, 12.5, 100000, 1e20, 1.23e-10, -12345.6789, 9999.9999, 10000,
                 0.0001, 1.0, "00012.3400", "-0.000", "123456789012345678901234567890.123456789",
                 "1e-20", "-9.99E+30", 2 ** 63 - 1], ["numeric", "numeric(65,30)"]),
    ("text", ["", "a", "tab\there", "üñí©ødé 😀", "x" * 3000, 5, 1.5], ["text", "character varying"]),
    ("timestamp", TIMESTAMPS, ["timestamp(3)", "timestamptz", "timestamp(6)"]),
    ("date", ["2025-11-25", "0001-01-01", "9999-12-31", "2000-01-01", "1999-12-31"], ["date"]),
    ("bytea", [b"", b"\x00\x01\xff", bytes(range(256))], ["bytea"]),
    ("json", JSON_CASES[:9], ["jsonb", "json", "text"]),
]


def _import_literal(logical, v):
    """The COPY/insert text the importer sends for a SQLite value."""
    if logical == "timestamp":
        return canonical.ms_to_copy(canonical.timestamp_ms(v))
    if logical == "numeric":
        return canonical.numeric_plain(canonical.numeric_decimal(v))
    if logical == "float":
        return repr(float(v))
    if logical == "boolean":
        return "t" if v else "f"
    if logical == "bytea":
        return "\\x" + v.hex()
    return canonical.text_payload(v) if logical == "text" else str(v)


@pytest.mark.parametrize("logical,values,pg_types", CELL_CASES, ids=[f"{c[0]}-{c[2][0]}" for c in CELL_CASES])
def test_record_cells_match_postgresql_record_send(cur, logical, values, pg_types):
    """canonical.cell (Python) == the bytes record_send() gives for pgdigest's canonical
    expression, for every target type the import may use; NULL included."""
    from pgcutover.pgdigest import canonical_expr
    cur.execute("SET TimeZone = 'Pacific/Chatham'")   # far from UTC: must not matter
    for pg_type in pg_types:
        cur.execute(f"CREATE TEMP TABLE v (i int, c {pg_type})")
        for i, val in enumerate(values + [None]):
            lit = None if val is None else _import_literal(logical, val)
            cur.execute(f"INSERT INTO v VALUES (%s, %s::{pg_type})", (i, lit))
        cur.execute(f"SELECT substr(record_send(ROW({canonical_expr(logical, 'c', pg_type)})), 5) "
                    "FROM v ORDER BY i")
        pg = [bytes(r[0]) for r in cur.fetchall()]
        cur.execute("DROP TABLE v")
        assert [canonical.cell(logical, val) for val in values + [None]] == pg, pg_type
