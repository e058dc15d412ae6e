"""Both backends behind one small interface, returning identical JSON values.

Columns are classified once per table (SQLite declared type / PostgreSQL type) so a
value comes out the same whichever database holds it: DateTime as ISO-8601 UTC with
milliseconds whether SQLite stored INTEGER ms or TEXT ``YYYY-MM-DD HH:MM:SS``;
Boolean as true/false (SQLite 0/1); Decimal as a plain decimal string (SQLite REAL,
PostgreSQL numeric); Json parsed; numbers as JavaScript would print them.

A connection lives for one request only: when the process is stopped nothing holds
the SQLite file (the runbook proves that with a /proc scan before touching it).
"""
from __future__ import annotations

import contextlib
import json
import re
import sqlite3
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from urllib.parse import quote

from .config import Database

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_TEXT_TS = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?"
                      r"(Z|[+-]\d{2}:?\d{2})?$")
_MAX_SAFE = 2 ** 53


def kind_of(declared: str) -> str:
    """Value kind from a SQLite declared type or a PostgreSQL type name."""
    t = (declared or "").lower()
    if "timestamp" in t or "datetime" in t:
        return "timestamp"
    if t.startswith("bool"):
        return "boolean"
    if t.startswith(("decimal", "numeric")):
        return "decimal"
    if t in ("real", "float", "double", "double precision") or t.startswith("float"):
        return "float"
    if t in ("json", "jsonb"):
        return "json"
    if "int" in t:
        return "integer"
    if t in ("blob", "bytea"):
        return "bytes"
    return "text"


def iso(dt: datetime) -> str:
    if dt.tzinfo is None:           # timestamp(3) without time zone holds UTC
        dt = dt.replace(tzinfo=timezone.utc)
    dt = dt.astimezone(timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (dt.microsecond // 1000)


def parse_text_ts(s: str) -> datetime | None:
    m = _TEXT_TS.match(s.strip())
    if not m:
        return None
    y, mo, d, h, mi, sec, frac, tz = m.groups()
    dt = datetime(int(y), int(mo), int(d), int(h), int(mi), int(sec),
                  int((frac or "0").ljust(6, "0")), tzinfo=timezone.utc)
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        hh, mm = int(tz[1:3]), int(tz[-2:])
        dt -= sign * timedelta(hours=hh, minutes=mm)
    return dt


def js_number(v):
    """JSON.stringify semantics: 100.0 -> 100, -0.0 -> 0."""
    if isinstance(v, float) and v.is_integer() and abs(v) < _MAX_SAFE:
        return int(v)
    return v


def _js_json(v):
    if isinstance(v, dict):
        return {k: _js_json(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_js_json(x) for x in v]
    return js_number(v)


def to_json_value(kind: str, v):
    if v is None:
        return None
    if kind == "timestamp":
        if isinstance(v, datetime):
            return iso(v)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return iso(EPOCH + timedelta(milliseconds=int(v)))
        if isinstance(v, str):
            dt = parse_text_ts(v)
            return iso(dt) if dt else v
        return v
    if kind == "boolean":
        return bool(v)
    if kind == "decimal":
        d = v if isinstance(v, Decimal) else Decimal(repr(v) if isinstance(v, float) else str(v))
        s = format(d.normalize(), "f")
        return "0" if s in ("-0", "0") else s
    if kind == "json":
        if isinstance(v, (str, bytes)):
            try:
                v = json.loads(v)
            except ValueError:
                return v
        return _js_json(v)
    if kind == "bytes" and isinstance(v, (bytes, memoryview)):
        return bytes(v).hex()
    return js_number(v)


class Backend:
    """``rows(sql, params)`` with ``%s`` placeholders and double-quoted identifiers
    (valid in both dialects); results as JSON-ready dicts."""

    name = ""

    def __init__(self, db: Database):
        self.db = db
        self._kinds: dict[str, dict[str, str]] = {}

    def kinds(self, table: str) -> dict[str, str]:
        if table not in self._kinds:
            with self.connect() as conn:
                self._kinds[table] = self._load_kinds(conn, table)
        return self._kinds[table]

    def rows(self, table: str, sql: str, params=()) -> list[dict]:
        kinds = self.kinds(table)
        with self.connect() as conn:
            cur = self._execute(conn, sql, params)
            names = [d[0] for d in cur.description]
            out = [{n: to_json_value(kinds.get(n, "text"), v) for n, v in zip(names, r)}
                   for r in cur.fetchall()]
        return out

    def order_by(self, table: str, column: str) -> str:
        return f'"{column}"'


class SQLiteBackend(Backend):
    name = "sqlite"

    @contextlib.contextmanager
    def connect(self):
        # mode=rw: a missing file is an error, never a new empty database.
        uri = "file:" + quote(str(self.db.sqlite_path)) + "?mode=rw"
        conn = sqlite3.connect(uri, uri=True, timeout=5)
        try:
            conn.execute("PRAGMA foreign_keys=ON")
            with conn:          # commit on success, roll back on error
                yield conn
        finally:
            conn.close()

    def _execute(self, conn, sql, params):
        return conn.execute(sql.replace("%s", "?"), params)

    def _load_kinds(self, conn, table):
        return {r[1]: kind_of(r[2]) for r in conn.execute(f'PRAGMA table_info("{table}")')}

    def now_value(self, kind: str, dt: datetime):
        return int((dt - EPOCH) / timedelta(milliseconds=1)) if kind == "timestamp" else dt

    def json_param(self, value):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class PostgresBackend(Backend):
    name = "postgresql"

    def __init__(self, db: Database):
        super().__init__(db)
        import psycopg2  # only needed for this backend
        import psycopg2.extras
        self._pg = psycopg2
        self._Json = psycopg2.extras.Json

    @contextlib.contextmanager
    def connect(self):
        conn = self._pg.connect(application_name="pfa-app", **self.db.connect_kwargs)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT set_config('search_path', quote_ident(%s), false), "
                            "set_config('TimeZone', 'UTC', false)", (self.db.schema,))
            with conn:
                yield conn
        finally:
            conn.close()

    def _execute(self, conn, sql, params):
        cur = conn.cursor()
        cur.execute(sql, params)
        return cur

    def _load_kinds(self, conn, table):
        cur = self._execute(conn, "SELECT a.attname, format_type(a.atttypid, a.atttypmod) "
                            "FROM pg_attribute a WHERE a.attrelid = to_regclass(quote_ident(%s)) "
                            "AND a.attnum > 0 AND NOT a.attisdropped", (table,))
        return {n: kind_of(t.split("(")[0].replace(" without time zone", "")
                           .replace(" with time zone", "")) for n, t in cur.fetchall()}

    def order_by(self, table, column):
        # Byte order, as SQLite's BINARY collation sorts text keys.
        return f'"{column}" COLLATE "C"' if self.kinds(table).get(column) == "text" else f'"{column}"'

    def now_value(self, kind, dt):
        return dt.replace(tzinfo=None)

    def json_param(self, value):
        return self._Json(value)


def backend_for(db: Database) -> Backend:
    return SQLiteBackend(db) if db.kind == "sqlite" else PostgresBackend(db)
