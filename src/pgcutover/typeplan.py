"""The type plan: logical type and auto-mode PostgreSQL type of every column.

Decided from the declared type (Prisma conventions first, then SQLite's affinity
rules for anything else) AND the storage classes actually observed (``typeof()``),
because SQLite stores whatever it is given.  ``plan_column`` is pure; analyze.py runs
the value checks (``bad_cell_sql``, ``python_check``) that can still turn a
candidate into a blocker (or JSON into text).
"""
from __future__ import annotations

import re

STORAGES = ("integer", "real", "text", "blob")
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
FLOAT_EXACT_INT = 1 << 53
# Python datetime range (year 1..9999), inside PostgreSQL's timestamp range.
TS_MIN_MS = -62135596800000
TS_MAX_MS = 253402300799999


def affinity(declared: str) -> str:
    """SQLite 3 column affinity (https://sqlite.org/datatype3.html, 3.1)."""
    d = (declared or "").upper()
    if "INT" in d:
        return "integer"
    if "CHAR" in d or "CLOB" in d or "TEXT" in d:
        return "text"
    if "BLOB" in d or not d.strip():
        return "blob"
    if "REAL" in d or "FLOA" in d or "DOUB" in d:
        return "real"
    return "numeric"


_DECIMAL_RE = re.compile(r"^\s*(?:DECIMAL|NUMERIC|DEC)\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?",
                         re.IGNORECASE)


def numeric_precision(declared: str):
    """(precision, scale) from ``DECIMAL(p,s)``; (None, None) when unconstrained.

    Prisma's SQLite ``DECIMAL`` has no precision: unconstrained ``numeric`` keeps
    every value exactly."""
    m = _DECIMAL_RE.match(declared or "")
    if not m or not m.group(1):
        return None, None
    p = int(m.group(1))
    s = int(m.group(2) or 0)
    if not 1 <= p <= 1000 or s > p:
        return None, None
    return p, s


def storage_of(typeof: dict) -> str | None:
    """``integer``/``real``/``text``/``blob`` if uniform, ``mixed``, None if all NULL."""
    present = [s for s in STORAGES if typeof.get(s)]
    if not present:
        return None
    return present[0] if len(present) == 1 else "mixed"


def declared_kind(declared: str) -> str | None:
    d = (declared or "").strip().upper()
    base = re.split(r"[\s(]", d, maxsplit=1)[0] if d else ""
    if base in ("DATETIME", "TIMESTAMP", "TIMESTAMPTZ") or d.startswith("TIMESTAMP"):
        return "timestamp"
    if base == "DATE":
        return "date"
    if base in ("BOOLEAN", "BOOL"):
        return "boolean"
    if base in ("JSON", "JSONB"):
        return "json"
    if base in ("DECIMAL", "NUMERIC", "DEC"):
        return "numeric"
    return None


def plan_column(declared: str, typeof: dict) -> dict:
    """Return ``{logical, pg_type, storage, warnings, blockers}`` for one column.

    ``typeof`` maps storage class -> count (non-NULL cells).  Blockers here are
    storage-level ``(reason, SQL condition template on {c})`` pairs; value-level
    ones come from analyze's checks."""
    present = {s for s in STORAGES if typeof.get(s)}
    storage = storage_of(typeof)
    kind = declared_kind(declared)
    aff = affinity(declared)
    warnings: list[str] = []
    blockers: list[str] = []

    def result(logical, pg_type):
        # an all-NULL column gets the storage its logical type would have
        st = storage if present else _EMPTY_STORAGE[logical]
        return {"logical": logical, "pg_type": pg_type, "storage": st,
                "warnings": warnings, "blockers": blockers}

    if "blob" in present and len(present) > 1:
        blockers.append(("BLOB mixed with other storage classes: no lossless PostgreSQL type",
                         "typeof({c})='blob'"))
        return result("bytea", "bytea")
    if present == {"blob"}:
        if aff != "blob":
            warnings.append(f"declared {declared or 'untyped'} but every value is a BLOB: bytea")
        return result("bytea", "bytea")

    if kind == "timestamp":
        if present <= {"integer", "text"}:
            return result("timestamp", "timestamp(3)")
        blockers.append(("REAL value in a DateTime column (expected INTEGER ms or TEXT)",
                         "typeof({c})='real'"))
        return result("timestamp", "timestamp(3)")
    if kind == "date":
        if present <= {"text"}:
            return result("date", "date")
        if present <= {"integer", "text"}:
            return result("timestamp", "timestamp(3)")
        blockers.append(("REAL value in a DATE column", "typeof({c})='real'"))
        return result("date", "date")
    if kind == "boolean":
        if present <= {"integer"}:
            return result("boolean", "boolean")
        blockers.append(("non-INTEGER value in a BOOLEAN column (expected 0/1)",
                         "typeof({c}) IN ('real','text')"))
        return result("boolean", "boolean")
    if kind == "json":
        if present <= {"text"}:
            return result("json", "jsonb")
        warnings.append("JSON column holds non-TEXT values: kept as text")
        return result("text", "text")
    if kind == "numeric":
        if present <= {"integer", "real", "text"}:
            p, s = numeric_precision(declared)
            return result("numeric", f"numeric({p},{s})" if p else "numeric")

    if aff == "integer":
        if "real" in present:
            blockers.append(("REAL value in an INTEGER column (fraction or beyond int64)",
                             "typeof({c})='real'"))
            return result("integer", "bigint")
        if present <= {"integer"}:
            return result("integer", "bigint")
        warnings.append("INTEGER column holds TEXT values: migrated as text")
        return result("text", "text")
    if aff == "real":
        if present <= {"integer", "real"}:
            return result("float", "double precision")
        warnings.append("REAL column holds TEXT values: migrated as text")
        return result("text", "text")
    if aff == "text":
        return result("text", "text")
    if aff == "numeric":
        if present <= {"integer"}:
            return result("integer", "bigint")
        if present <= {"integer", "real"}:
            return result("numeric", "numeric")
        if present == {"text"}:
            return result("text", "text")
        warnings.append(f"mixed storage in {declared} column: migrated as text")
        return result("text", "text")
    # no declared type (BLOB affinity): go by the values
    if not present:
        return result("text", "text")
    if present == {"integer"}:
        return result("integer", "bigint")
    if present <= {"integer", "real"}:
        return result("float", "double precision")
    if present == {"text"}:
        return result("text", "text")
    warnings.append("untyped column with mixed storage: migrated as text")
    return result("text", "text")


_EMPTY_STORAGE = {"integer": "integer", "boolean": "integer", "timestamp": "integer",
                  "float": "real", "numeric": "real", "text": "text", "json": "text",
                  "date": "text", "bytea": "blob"}


def bad_cell_sql(logical: str, pg_type: str, col: str, typeof: dict | None = None
                 ) -> list[tuple[str, str]]:
    """(reason, SQL condition true for a cell PostgreSQL cannot hold) per check.

    Only checks that the observed storage classes make possible, written with plain
    comparisons where they can be (numbers sort before TEXT, so ``col < ''`` means
    "is a number"): a typeof() call per cell costs more than the comparison."""
    typeof = typeof if typeof is not None else {"integer": 1, "real": 1, "text": 1}
    ints, reals = bool(typeof.get("integer")), bool(typeof.get("real"))
    others = bool(typeof.get("text") or typeof.get("blob"))
    checks = []
    if logical == "boolean":
        checks.append(("boolean value not 0/1", f"{col} IS NOT NULL AND {col} NOT IN (0, 1)"))
    elif logical == "timestamp" and ints:
        high = f"{col} > {TS_MAX_MS}" + (f" AND {col} < ''" if others else "")
        checks.append(("timestamp out of range (milliseconds outside year 1..9999)",
                       f"({col} < {TS_MIN_MS} OR ({high}))"))
    elif logical == "float" and ints:
        cond = f"({col} > {FLOAT_EXACT_INT} OR {col} < -{FLOAT_EXACT_INT})"
        if reals:
            cond = f"typeof({col})='integer' AND {cond}"
        checks.append(("integer in a float column not exactly representable (|v| > 2^53)",
                       cond))
    elif logical == "numeric" and reals:
        high = f"{col} > 1.7976931348623157e308" + (f" AND {col} < ''" if others else "")
        checks.append(("infinite REAL in a numeric column",
                       f"(({high}) OR {col} < -1.7976931348623157e308)"))
    return checks


def python_check_filter(logical: str, pg_type: str, col: str, typeof: dict | None = None
                        ) -> str | None:
    """SQL WHERE selecting the cells that analyze must check in Python, if any
    (None when the observed storage classes leave nothing to check)."""
    typeof = typeof if typeof is not None else {"text": 1, "real": 1, "integer": 1}
    text = bool(typeof.get("text"))
    # numbers sort before TEXT and BLOB; BLOB is excluded by the plan here
    if logical in ("timestamp", "date", "json"):
        return f"{col} >= ''" if text else None
    if logical == "numeric":
        if pg_type == "numeric":   # unconstrained: any finite REAL fits (checked in SQL)
            return f"{col} >= ''" if text else None
        return f"{col} IS NOT NULL"
    return None
