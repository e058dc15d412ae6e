"""Cells of a ``.rows`` file (docs/FORMAT.md): COPY text with storage tags in mixed columns.

Python encoders/decoders for single cells (tests, importer, slow paths) and the
SQLite SQL expressions the exporter uses so that columns whose encoding SQLite can
produce itself never cost a Python call per cell.
"""
from __future__ import annotations

NULL = "\\N"
TAGS = {int: "i", float: "r", str: "t", bytes: "b"}
TAG_STORAGE = {"i": "integer", "r": "real", "t": "text", "b": "blob"}


def escape_text(s: str) -> str:
    if "\\" in s:
        s = s.replace("\\", "\\\\")
    if "\t" in s:
        s = s.replace("\t", "\\t")
    if "\n" in s:
        s = s.replace("\n", "\\n")
    if "\r" in s:
        s = s.replace("\r", "\\r")
    return s


def encode_value(v) -> str:
    """COPY text of one non-tagged cell (by its SQLite storage class)."""
    t = type(v)
    if v is None:
        return NULL
    if t is int:
        return str(v)
    if t is float:
        return repr(v)
    if t is str:
        return escape_text(v)
    if t is bytes:
        return "\\\\x" + v.hex()
    raise TypeError(f"unexpected SQLite value type {t.__name__}")


def encode_cell(v, storage: str) -> str:
    if v is None:
        return NULL
    if storage == "mixed":
        return TAGS[type(v)] + encode_value(v)
    return encode_value(v)


def unescape_text(s: str) -> str:
    if "\\" not in s:
        return s
    out, i, n = [], 0, len(s)
    simple = {"\\": "\\", "t": "\t", "n": "\n", "r": "\r", "b": "\b", "f": "\f", "v": "\v"}
    while i < n:
        c = s[i]
        if c == "\\" and i + 1 < n:
            out.append(simple.get(s[i + 1], s[i + 1]))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def decode_value(field: str, storage: str):
    if field == NULL:
        return None
    if storage == "integer":
        return int(field)
    if storage == "real":
        return float(field)
    if storage == "text":
        return unescape_text(field)
    if storage == "blob":
        if not field.startswith("\\\\x"):
            raise ValueError("blob cell without \\\\x prefix")
        return bytes.fromhex(field[3:])
    raise ValueError(f"unknown storage {storage!r}")


def decode_cell(field: str, storage: str):
    """Inverse of ``encode_cell``: the exact SQLite value (storage class included)."""
    if field == NULL:
        return None
    if storage == "mixed":
        return decode_value(field[1:], TAG_STORAGE[field[0]])
    return decode_value(field, storage)


def decode_line(line: str, storages: list[str]) -> list:
    fields = line.rstrip("\n").split("\t")
    if len(fields) != len(storages):
        raise ValueError("wrong number of cells in a .rows line")
    return [decode_cell(f, s) for f, s in zip(fields, storages)]


# -- SQLite expressions (fast path) ------------------------------------------------

def sql_escape_text(col: str) -> str:
    return ("replace(replace(replace(replace(%s,'\\','\\\\'),char(9),'\\t'),"
            "char(10),'\\n'),char(13),'\\r')" % col)


def copy_sql(col: str, storage: str) -> str | None:
    """SQLite expression yielding the COPY text of the column, or None when only
    Python can produce it (REAL needs repr(); mixed columns holding REAL)."""
    if storage == "integer":
        return "ifnull(%s,'\\N')" % col
    if storage == "text":
        return "ifnull(%s,'\\N')" % sql_escape_text(col)
    if storage == "blob":
        return "ifnull('\\\\x'||lower(hex(%s)),'\\N')" % col
    return None


def copy_sql_mixed_no_real(col: str) -> str:
    return ("CASE typeof({c}) WHEN 'null' THEN '\\N' WHEN 'integer' THEN 'i'||{c} "
            "WHEN 'text' THEN 't'||{e} ELSE 'b\\\\x'||lower(hex({c})) END"
            ).format(c=col, e=sql_escape_text(col))
