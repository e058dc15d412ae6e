"""The one place that opens PostgreSQL connections, plus identifier quoting.

Every session is pinned to UTC / ISO dates / UTF-8 / round-trip float output, so
results never depend on the client's or the server's time zone or locale. The
password comes from libpq (``passfile=``, PGPASSFILE, PGPASSWORD) or the ``password``
argument (the Ansible module's no_log ``login_password``); it never appears in argv
or in messages.
"""
from __future__ import annotations

import psycopg2
import psycopg2.extensions
from psycopg2 import errorcodes

from .errors import TargetError

SESSION_SETTINGS = (
    ("TimeZone", "UTC"),
    ("DateStyle", "ISO, YMD"),
    ("IntervalStyle", "postgres"),
    ("extra_float_digits", "3"),
    ("statement_timeout", "0"),
    ("idle_in_transaction_session_timeout", "0"),
)


def connect(dsn: str, password: str | None = None):
    """Open a psycopg2 connection (not autocommit) with the pgcutover session settings."""
    kwargs = {"application_name": "pgcutover"}
    if password:
        kwargs["password"] = password
    try:
        conn = psycopg2.connect(dsn, **kwargs)
    except psycopg2.Error as exc:
        # libpq messages name host/port/user, never the password.
        raise TargetError(f"cannot connect to PostgreSQL: {str(exc).strip()}") from None
    conn.set_client_encoding("UTF8")
    conn.autocommit = True
    with conn.cursor() as cur:
        for name, value in SESSION_SETTINGS:
            cur.execute("SELECT set_config(%s, %s, false)", (name, value))
    conn.autocommit = False
    return conn


def qi(name: str) -> str:
    """Quote an identifier exactly as given (case and all characters kept)."""
    if "\x00" in name:
        raise TargetError("identifier contains NUL", table=name)
    return '"' + name.replace('"', '""') + '"'


def qn(schema: str, name: str) -> str:
    """Schema-qualified quoted name."""
    return f"{qi(schema)}.{qi(name)}"


def ql(value: str) -> str:
    """Quote a string literal (standard_conforming_strings is on in every supported PG)."""
    return "'" + value.replace("'", "''") + "'"


def pg_error_summary(exc: psycopg2.Error) -> str:
    """A server error without row values: never the DETAIL/CONTEXT lines, and for data
    exceptions (class 22, whose primary message quotes the offending input) only the
    condition name."""
    diag = getattr(exc, "diag", None)
    primary = diag.message_primary if diag is not None else None
    code = getattr(exc, "pgcode", None) or ""
    if code.startswith("22") or not primary:
        name = errorcodes.lookup(code) if code else None
        primary = (name or type(exc).__name__).lower().replace("_", " ")
    return f"{primary} (SQLSTATE {code or 'n/a'})"
