"""Export ``.rows`` (COPY text + storage tags, docs/FORMAT.md) -> COPY stream for the target.

Most columns need no work: the export already wrote COPY text, and PostgreSQL's own
input functions check what they can check safely (boolean accepts exactly ``0``/``1``
from an INTEGER cell, bytea hex, jsonb syntax). A table whose columns all pass is
streamed straight from the file to ``copy_expert`` (no Python per row). Columns are
converted in Python only where PostgreSQL would *silently* change the value or cannot
read it: timestamps (epoch ms, offsets, ``'now'``), integers in float columns beyond
2^53, numerics that would round into ``numeric(p,s)``, and ``mixed`` storage tags.

A conversion error names table, column, line and primary key, never the value.
Times never go through local-time functions: pure integer arithmetic, UTC.
"""
from __future__ import annotations

import gc
import re
from datetime import date

from .canonical import CellError, check_numeric, numeric_decimal, numeric_plain, timestamp_ms
from .errors import ImportFailedError
from .typeplan import TS_MAX_MS, TS_MIN_MS

NULL = b"\\N"
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
MS_PER_DAY = 86_400_000
F53 = 1 << 53
MEMO_RATIO, MEMO_MAX = 8, 50_000   # see TableConverter.chunks


# -- timestamps -----------------------------------------------------------------------
_day_cache: dict[int, bytes] = {}


def _day_prefix(days: int) -> bytes:
    s = _day_cache.get(days)
    if s is None:
        try:
            d = date.fromordinal(EPOCH_ORDINAL + days)
        except (ValueError, OverflowError):
            raise CellError("timestamp out of range (years 1..9999)") from None
        s = b"%04d-%02d-%02d " % (d.year, d.month, d.day)
        if len(_day_cache) < 200_000:
            _day_cache[days] = s
    return s


# Lookup tables: time of day per second and the millisecond suffix, so formatting a
# timestamp is two divmods and three lookups (no per-call string formatting).
_SOD = [b"%02d:%02d:%02d." % (x // 3600, x // 60 % 60, x % 60) for x in range(86400)]
_MSX = [b"%03d+00" % x for x in range(1000)]


def format_ms(ms: int) -> bytes:
    """Epoch milliseconds -> ``YYYY-MM-DD HH:MM:SS.fff+00`` (UTC)."""
    days, rem = divmod(ms, MS_PER_DAY)
    sec, f = divmod(rem, 1000)
    return (_day_cache.get(days) or _day_prefix(days)) + _SOD[sec] + _MSX[f]


def _ts_from_int(b: bytes, _get=_day_cache.get, _sod=_SOD, _msx=_MSX) -> bytes:
    ms = int(b)
    if not TS_MIN_MS <= ms <= TS_MAX_MS:
        raise CellError("timestamp out of range (milliseconds outside year 1..9999)")
    days, rem = divmod(ms, MS_PER_DAY)
    sec, f = divmod(rem, 1000)
    return (_get(days) or _day_prefix(days)) + _sod[sec] + _msx[f]


def _ts_from_text(b: bytes) -> bytes:
    # Same parser as the digest (canonical.timestamp_ms): offsets to UTC, strict form.
    return format_ms(timestamp_ms(unescape_copy(b)))


# -- numbers ----------------------------------------------------------------------------
def _float_from_int(b: bytes) -> bytes:
    if abs(int(b)) > F53:
        raise CellError("integer beyond 2^53 is not exactly representable as double precision")
    return b


def numeric_checker(precision: int | None, scale: int | None):
    """Converter for a numeric cell (REAL repr, INTEGER or TEXT decimal) that refuses
    anything PostgreSQL would round or reject: only exact, finite values that fit
    (canonical.check_numeric), sent as plain decimal text."""
    def conv(b: bytes) -> bytes:
        d = numeric_decimal(unescape_copy(b))
        check_numeric(d, precision, scale)
        return numeric_plain(d).encode("ascii")
    return conv


def _bool_from_int(b: bytes) -> bytes:
    if b == b"1":
        return b"t"
    if b == b"0":
        return b"f"
    raise CellError("boolean must be INTEGER 0 or 1")


def _date_text(b: bytes) -> bytes:
    t = b.decode("ascii", "replace")
    try:
        if len(t) != 10 or date.fromisoformat(t).isoformat() != t:
            raise ValueError
    except ValueError:
        raise CellError("date must be YYYY-MM-DD") from None
    return b


def _reject(reason):
    def conv(b: bytes) -> bytes:
        raise CellError(reason)
    return conv


def _passthrough(b: bytes) -> bytes:
    return b


# Converter for (logical, storage class). ``None`` = the COPY text already is what the
# target type reads exactly (PostgreSQL's input function does any remaining check).
def _plain_converter(logical: str, storage: str, pg_type: str):
    base, prec, scale = split_type(pg_type)
    if storage == "null":
        return None
    if logical == "integer":
        return None if storage == "integer" else _reject(f"{storage} value in an integer column")
    if logical == "boolean":
        if storage != "integer":
            return _reject(f"{storage} value in a boolean column")
        return None if base == "boolean" else _bool_from_int
    if logical == "float":
        if storage == "real":
            return None
        if storage == "integer":
            return _float_from_int
        return _reject(f"{storage} value in a float column")
    if logical == "numeric":
        # Unconstrained numeric reads a REAL's repr() or an INTEGER exactly; a non-finite
        # REAL is a blocker at analyze and numeric_in refuses "inf" anyway.
        if storage in ("integer", "real") and prec is None:
            return None
        if storage in ("integer", "real", "text"):
            return numeric_checker(prec, scale)
        return _reject(f"{storage} value in a numeric column")
    if logical == "text":
        if storage == "blob":
            return _reject("blob value in a text column")
        return None
    if logical == "timestamp":
        if storage == "integer":
            return _ts_from_int
        if storage == "text":
            return _ts_from_text
        return _reject(f"{storage} value in a timestamp column")
    if logical == "date":
        return _date_text if storage == "text" else _reject(f"{storage} value in a date column")
    if logical == "bytea":
        return None if storage == "blob" else _reject(f"{storage} value in a bytea column")
    if logical == "json":
        return None if storage in ("text", "integer", "real") else _reject(f"{storage} value in a json column")
    raise CellError(f"unknown logical type {logical!r}")


_TAGS = {ord("i"): "integer", ord("r"): "real", ord("t"): "text", ord("b"): "blob"}


def _mixed_converter(logical: str, pg_type: str):
    per_tag = {}
    for tag, storage in _TAGS.items():
        per_tag[tag] = _plain_converter(logical, storage, pg_type) or _passthrough

    def conv(b: bytes) -> bytes:
        fn = per_tag.get(b[0]) if b else None
        if fn is None:
            raise CellError("mixed-storage cell without a valid storage tag")
        return fn(b[1:])
    # TableConverter._compile unrolls the INTEGER-tagged cells ("i") of such a column
    conv.int_tag_ts = per_tag[ord("i")] is _ts_from_int
    return conv


def split_type(pg_type: str) -> tuple[str, int | None, int | None]:
    """'numeric(65,30)' -> ('numeric', 65, 30); 'timestamp(3)' -> ('timestamp', 3, None)."""
    t = (pg_type or "").strip().lower()
    m = re.match(r"([a-z ]+?)\s*(?:\((\d+)(?:\s*,\s*(\d+))?\))?(\s+with(?:out)? time zone)?\s*\Z", t)
    if not m:
        return t, None, None
    base = m.group(1) + (m.group(4) or "")
    base = {"decimal": "numeric", "int4": "integer", "int8": "bigint", "int2": "smallint",
            "float8": "double precision", "bool": "boolean",
            "timestamp without time zone": "timestamp",
            "timestamp with time zone": "timestamptz"}.get(base, base)
    return (base, int(m.group(2)) if m.group(2) else None,
            int(m.group(3)) if m.group(3) else None)


def column_converter(col: dict, pg_type: str | None = None):
    """The converter for one manifest column into ``pg_type`` (default: its own), or None."""
    pg_type = pg_type or col["pg_type"]
    if col["storage"] == "mixed":
        return _mixed_converter(col["logical"], pg_type)
    try:
        return _plain_converter(col["logical"], col["storage"], pg_type)
    except CellError as exc:
        raise ImportFailedError(str(exc), column=col["name"]) from None


class TableConverter:
    """Turns one table's ``.rows`` file into the COPY stream for its target columns."""

    def __init__(self, table: str, tinfo: dict, target_types: dict | None = None):
        self.table = table
        self.columns = tinfo["columns"]
        self.ncols = len(self.columns)
        target_types = target_types or {}
        self.convs = []
        for i, c in enumerate(self.columns):
            fn = column_converter(c, target_types.get(c["name"]))
            if fn is not None:
                self.convs.append((i, fn))
        self.pk = tinfo.get("primary_key") or []
        self.error: ImportFailedError | None = None

    @property
    def passthrough(self) -> bool:
        return not self.convs

    def _compile(self, memo: dict | None = None):
        """A row function with the conversions unrolled (no per-cell loop or try:
        ~2x faster in CPython); any exception sends the chunk to the slow path.

        ``memo`` maps a column index to a dict of already converted cells (raw cell ->
        converted), consulted before the converter: date-like timestamp columns repeat
        few values (a few hundred days in 1M rows), and a dict hit costs a tenth of
        formatting. The key is the exact cell, the converter deterministic, so a hit
        is the same result; failures never enter the dict."""
        memo = memo or {}
        env = {"NULL": NULL, "Bad": CellError, "DG": _day_cache.get, "DP": _day_prefix,
               "SOD": _SOD, "MSX": _MSX, "LO": TS_MIN_MS, "HI": TS_MAX_MS}
        src = ["def convert(line):", "    c = line[:-1].split(b'\\t')",
               f"    if len(c) != {self.ncols}: raise Bad('cell count')"]
        for i, fn in self.convs:
            env[f"f{i}"] = fn
            # _ts_from_int unrolled (also for the INTEGER cells of a mixed column): the
            # calls are a third of the work on columns with a distinct time per row
            ts = ["if ms < LO or ms > HI: raise Bad('range')",
                  "d, r = divmod(ms, 86400000)", "s, f = divmod(r, 1000)",
                  "r = (DG(d) or DP(d)) + SOD[s] + MSX[f]"]
            if fn is _ts_from_int:
                conv = ["ms = int(v)"] + ts
            elif getattr(fn, "int_tag_ts", False):
                conv = ["if v[0] == 105:", "    ms = int(v[1:])"] + [f"    {x}" for x in ts]
                conv += ["else:", f"    r = f{i}(v)"]
            else:
                conv = [f"r = f{i}(v)"]
            src += [f"    v = c[{i}]", "    if v != NULL:"]
            if i in memo:
                env[f"g{i}"] = memo[i].get
                env[f"m{i}"] = memo[i]
                src += [f"        r = g{i}(v)", "        if r is None:"]
                src += [f"            {line}" for line in conv] + [f"            m{i}[v] = r"]
            else:
                src += [f"        {line}" for line in conv]
            src.append(f"        c[{i}] = r")
        src.append("    return b'\\t'.join(c)")
        exec("\n".join(src), env)  # noqa: S102 - generated from column indexes only
        return env["convert"]

    def chunks(self, fh, chunk_bytes: int = 1 << 20):
        """Yield converted COPY data (bytes) from the binary file ``fh``."""
        # Every timestamp column starts memoised; after each chunk a column with many
        # distinct values (more than one per MEMO_RATIO lines so far, or MEMO_MAX)
        # drops its memo, so the dicts stay small (a few hundred entries on the sample).
        memo = {i: {} for i, fn in self.convs if self.columns[i]["logical"] == "timestamp"}
        convert = self._compile(memo)
        base = 0
        # Millions of short-lived cell lists make the cyclic GC run constantly (4x
        # slower); nothing here creates reference cycles.
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            while True:
                lines = fh.readlines(chunk_bytes)
                if not lines:
                    return
                try:
                    out = [convert(line) for line in lines]
                except Exception:
                    for n, line in enumerate(lines, base + 1):
                        self._convert_checked(line, n)   # raises ImportFailedError
                    raise
                out.append(b"")
                yield b"\n".join(out)
                base += len(lines)
                if memo:
                    keep = {i: m for i, m in memo.items()
                            if len(m) * MEMO_RATIO <= base and len(m) <= MEMO_MAX}
                    if len(keep) != len(memo):
                        memo = keep
                        convert = self._compile(memo)
        finally:
            if was_enabled:
                gc.enable()

    def _convert_checked(self, line: bytes, lineno: int) -> bytes:
        """Slow path: the same conversion, naming column and key on failure."""
        cells = line[:-1].split(b"\t")
        if len(cells) != self.ncols:
            self.error = ImportFailedError(
                f"line has {len(cells)} cells, the manifest lists {self.ncols} columns",
                table=self.table, key=self.key_of_line(line, lineno))
            raise self.error
        for i, fn in self.convs:
            c = cells[i]
            if c != NULL:
                try:
                    cells[i] = fn(c)
                except (CellError, ValueError) as exc:
                    # kept: psycopg2 turns an exception inside read() into a COPY error
                    self.error = ImportFailedError(
                        f"value cannot be converted to the target type: "
                        f"{exc if isinstance(exc, CellError) else 'malformed number'}",
                        table=self.table, column=self.columns[i]["name"],
                        key=self.key_of_line(line, lineno))
                    raise self.error from None
        return b"\t".join(cells)

    def key_of_line(self, line: bytes, lineno: int):
        """The row's primary-key value(s) (never other cells); the line number if no PK."""
        return row_key(self.columns, self.pk, line, lineno)


def unescape_copy(b: bytes) -> str:
    """COPY text cell -> str (only the escapes the export writes)."""
    s = b.decode("utf-8", "replace")
    if "\\" not in s:
        return s
    return _ESC_RE.sub(lambda m: _ESC.get(m.group(1), m.group(1)), s)


_ESC = {"\\": "\\", "t": "\t", "n": "\n", "r": "\r"}
_ESC_RE = re.compile(r"\\(.)", re.S)


def cell_key_value(col: dict, b: bytes):
    """A primary-key cell as a JSON-friendly value (int for integers, else str)."""
    if b == NULL:
        return None
    storage = col["storage"]
    if storage == "mixed" and b:
        storage, b = _TAGS.get(b[0], "text"), b[1:]
    if storage == "integer":
        try:
            return int(b)
        except ValueError:
            pass
    return unescape_copy(b)


def row_key(columns: list[dict], pk: list[str], line: bytes, lineno: int):
    if not pk:
        return {"line": lineno}
    cells = line.rstrip(b"\n").split(b"\t")
    idx = {c["name"]: i for i, c in enumerate(columns)}
    key = {}
    for k in pk:
        i = idx.get(k)
        key[k] = cell_key_value(columns[i], cells[i]) if i is not None and i < len(cells) else None
    return key


def key_of_file_line(path, columns: list[dict], pk: list[str], lineno: int):
    """Read line ``lineno`` (1-based) of a ``.rows`` file and return its key."""
    with open(path, "rb") as fh:
        for n, line in enumerate(fh, 1):
            if n == lineno:
                return row_key(columns, pk, line, lineno)
    return {"line": lineno}


class ChunkReader:
    """File-like adaptor so ``copy_expert`` can pull from a generator of bytes."""

    def __init__(self, gen):
        self._gen = gen
        self._buf = b""

    def read(self, size: int = -1) -> bytes:
        if self._buf:
            b, self._buf = self._buf, b""
            return b
        for chunk in self._gen:
            if chunk:
                return chunk
        return b""

    readline = read
