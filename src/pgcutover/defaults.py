"""SQLite column DEFAULT expressions -> PostgreSQL DEFAULT expressions.

SQLite's ``CURRENT_TIMESTAMP`` / ``datetime('now')`` is UTC. On PostgreSQL a
``timestamp`` (without time zone) column defaulting to ``CURRENT_TIMESTAMP`` would
store the *session's* local time, so the translation is
``(CURRENT_TIMESTAMP AT TIME ZONE 'UTC')``: the same UTC wall-clock value the app
got from SQLite, whatever the server's or client's TimeZone. Anything we cannot
translate exactly is an error naming table and column (never silently dropped).
"""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from .errors import TargetError
from .pgconn import ql
from .canonical import CellError, timestamp_ms
from .row_convert import format_ms, split_type

_NUM_RE = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\Z")


def _strip_parens(expr: str) -> str:
    e = expr.strip()
    while e.startswith("(") and e.endswith(")") and _balanced(e[1:-1]):
        e = e[1:-1].strip()
    return e


def _balanced(s: str) -> bool:
    depth = 0
    for ch in s:
        depth += ch == "("
        depth -= ch == ")"
        if depth < 0:
            return False
    return depth == 0


def _sqlite_string(e: str) -> str | None:
    if len(e) >= 2 and e[0] == "'" and e[-1] == "'" and "'" not in e[1:-1].replace("''", ""):
        return e[1:-1].replace("''", "'")
    return None


def translate_default(expr: str | None, logical: str, pg_type: str, *,
                      table: str | None = None, column: str | None = None) -> str | None:
    """PostgreSQL DEFAULT expression for SQLite ``expr`` in a column of ``logical`` type."""
    if expr is None:
        return None
    e = _strip_parens(expr)
    low = re.sub(r"\s+", "", e.lower())
    base = split_type(pg_type)[0]

    def fail(why: str):
        raise TargetError(f"cannot translate the SQLite default of this column: {why}",
                          table=table, column=column)

    if low == "null":
        return None
    if low in ("current_timestamp", "datetime('now')", 'datetime("now")'):
        if logical == "timestamp":
            return ("CURRENT_TIMESTAMP" if base == "timestamptz"
                    else "(CURRENT_TIMESTAMP AT TIME ZONE 'UTC')")
        if logical == "text":
            return "to_char(CURRENT_TIMESTAMP AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')"
        if logical == "integer":
            fail("CURRENT_TIMESTAMP in an integer column")
        fail(f"CURRENT_TIMESTAMP in a {logical} column")
    if low in ("current_date", "date('now')", 'date("now")'):
        if logical == "date":
            return "(CURRENT_TIMESTAMP AT TIME ZONE 'UTC')::date"
        if logical == "text":
            return "to_char(CURRENT_TIMESTAMP AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
        fail(f"CURRENT_DATE in a {logical} column")
    if low in ("current_time", "time('now')"):
        if logical == "text":
            return "to_char(CURRENT_TIMESTAMP AT TIME ZONE 'UTC', 'HH24:MI:SS')"
        fail(f"CURRENT_TIME in a {logical} column")

    # Literals: booleans, numbers, strings, blobs.
    if low in ("true", "false"):
        if logical == "boolean":
            return low
        if logical in ("integer", "float", "numeric"):
            return "1" if low == "true" else "0"
        fail(f"boolean literal in a {logical} column")
    s = _sqlite_string(e)
    if _NUM_RE.match(e) or (s is not None and logical in ("integer", "float", "numeric", "boolean")
                            and _NUM_RE.match(s.strip())):
        num = e if s is None else s.strip()
        if logical == "boolean":
            if num in ("0", "1"):
                return "true" if num == "1" else "false"
            fail("boolean default must be 0 or 1")
        if logical == "integer":
            try:
                d = Decimal(num)
            except InvalidOperation:
                fail("not a number")
            if d != d.to_integral_value():
                fail("fractional default in an integer column")
            return str(int(d))
        if logical in ("float", "numeric"):
            return num if not num.startswith("+") else num[1:]
        if logical == "text":
            return ql(num)
        if logical == "timestamp" and s is None:
            try:
                return f"'{format_ms(int(num)).decode()}'::{pg_type}"
            except (ValueError, CellError):
                fail("numeric timestamp default out of range")
        if logical == "json":
            return f"{ql(num)}::jsonb"
        fail(f"numeric default in a {logical} column")
    if s is not None:
        if logical in ("text", "date"):
            return ql(s) if logical == "text" else f"{ql(s)}::date"
        if logical == "json":
            return f"{ql(s)}::jsonb"
        if logical == "timestamp":
            try:
                ms = timestamp_ms(s)
            except CellError:
                fail("string default is not a timestamp")
            return f"'{format_ms(ms).decode()}'::{pg_type}"
        if logical == "boolean" and s.lower() in ("true", "false"):
            return s.lower()
        fail(f"string default in a {logical} column")
    m = re.fullmatch(r"[xX]'([0-9a-fA-F]*)'", e)
    if m and logical == "bytea":
        return f"'\\x{m.group(1).lower()}'::bytea"
    fail("unsupported expression")
