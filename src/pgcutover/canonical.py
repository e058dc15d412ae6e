"""Canonical cell payloads and the content digest (docs/FORMAT.md), Python side.

The same functions serve the exporter (digest of what it writes), verify-source
(digest of the live SQLite file) and the importer (cell conversions), so the three
cannot drift apart.  The PostgreSQL side computes the same payloads in SQL
(pgdigest.py); tests/test_export_canonical.py checks both against a real server.
"""
from __future__ import annotations

import json
import re
import struct
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from hashlib import sha256

MOD64 = 1 << 64
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MS = timedelta(milliseconds=1)
_pack_d = struct.Struct(">d").pack
# (h1, h2) of a row hash: its first 16 bytes as two unsigned 64-bit big-endian integers
unpack_sums = struct.Struct(">QQ").unpack_from

# PostgreSQL 15 numeric limits (measured: 1e131071 and 1e-16383 are accepted,
# 1e131072 and 1e-16384 overflow), also for numbers inside jsonb.
PG_NUMERIC_MAX_WEIGHT_DIGITS = 131072
PG_NUMERIC_MAX_DSCALE = 16383


class CellError(ValueError):
    """A cell PostgreSQL cannot hold under the column's logical type (no value in msg)."""


# -- timestamps --------------------------------------------------------------------

_TS_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(Z|[+-]\d{2}:\d{2})?$")


def timestamp_ms(value) -> int:
    """Milliseconds since the epoch (UTC) of a Prisma DateTime cell."""
    if type(value) is int:
        ms = value
    elif type(value) is str:
        m = _TS_RE.match(value)
        if not m:
            raise CellError("TEXT timestamp not in YYYY-MM-DD HH:MM:SS[.fff][Z|+HH:MM] form")
        y, mo, d, h, mi, s, frac, tz = m.groups()
        frac = frac or ""
        if frac[3:].strip("0"):
            raise CellError("TEXT timestamp has non-zero sub-millisecond digits")
        try:
            dt = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s),
                          tzinfo=timezone.utc)
        except ValueError:
            raise CellError("TEXT timestamp is not a valid date/time") from None
        ms = (dt - _EPOCH) // _MS + int((frac + "000")[:3])
        if tz and tz != "Z":
            sign = -1 if tz[0] == "-" else 1
            hh, mm = int(tz[1:3]), int(tz[4:6])
            if hh > 23 or mm > 59:
                raise CellError("TEXT timestamp has an invalid UTC offset")
            ms -= sign * (hh * 3600 + mm * 60) * 1000
    else:
        raise CellError("timestamp cell is neither INTEGER milliseconds nor TEXT")
    if not -62135596800000 <= ms <= 253402300799999:
        raise CellError("timestamp out of range (year 1..9999)")
    return ms


def ms_to_copy(ms: int) -> str:
    """COPY input for timestamp(3)/timestamptz: ``YYYY-MM-DD HH:MM:SS.fff+00``."""
    dt = _EPOCH + ms * _MS
    return "%04d-%02d-%02d %02d:%02d:%02d.%03d+00" % (
        dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second, dt.microsecond // 1000)


_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def date_text(value) -> str:
    if type(value) is not str or not _DATE_RE.match(value):
        raise CellError("DATE cell is not TEXT YYYY-MM-DD")
    try:
        date.fromisoformat(value)
    except ValueError:
        raise CellError("DATE cell is not a valid date") from None
    return value


# -- numeric -------------------------------------------------------------------------

def numeric_decimal(value) -> Decimal:
    """Exact decimal of a numeric cell: REAL via its shortest repr, never binary rounding."""
    t = type(value)
    if t is int:
        return Decimal(value)
    if t is float:
        if value != value or value in (float("inf"), float("-inf")):
            raise CellError("non-finite REAL in a numeric column")
        return Decimal(repr(value))
    if t is str:
        s = value.strip()
        if not re.match(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$", s):
            raise CellError("TEXT in a numeric column is not a decimal number")
        try:
            d = Decimal(s)
        except InvalidOperation:
            raise CellError("TEXT in a numeric column is not a decimal number") from None
        return d
    raise CellError("numeric cell is not INTEGER, REAL or TEXT")


def numeric_plain(d: Decimal) -> str:
    """Plain (no exponent) decimal text keeping the scale, ``-0`` as ``0``; this is
    also what the importer sends to COPY."""
    if d.is_zero():
        d = abs(d)
    return format(d, "f")


def check_numeric(d: Decimal, precision=None, scale=None):
    """Raise CellError unless PostgreSQL ``numeric[(p,s)]`` holds ``d`` exactly."""
    sign, digits, exp = d.as_tuple()
    int_digits = max(len(digits) + exp, 0)
    frac_digits = max(-exp, 0)
    if int_digits > PG_NUMERIC_MAX_WEIGHT_DIGITS or frac_digits > PG_NUMERIC_MAX_DSCALE:
        raise CellError("numeric value beyond PostgreSQL's numeric range")
    if precision is not None:
        s = scale or 0
        q = d.quantize(Decimal(1).scaleb(-s)) if frac_digits > s else d
        if q != d:
            raise CellError(f"numeric value has more than {s} fractional digits")
        if d != 0 and d.adjusted() + 1 > precision - s:
            raise CellError(f"numeric value does not fit numeric({precision},{s})")


def numeric_payload(d: Decimal) -> str:
    """FORMAT.md payload: plain decimal, trailing fractional zeros and bare '.' removed."""
    s = format(d, "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    if s in ("-0", "", "-"):
        s = "0"
    return s


# -- float ---------------------------------------------------------------------------

def float_value(value) -> float:
    """The double PostgreSQL stores for a float cell (an INTEGER only when exact)."""
    if type(value) is int:
        if not -(1 << 53) <= value <= (1 << 53):
            raise CellError("integer in a float column not exactly representable")
        return float(value)
    if type(value) is not float:
        raise CellError("float cell is neither REAL nor INTEGER")
    return value


def float_payload(value) -> str:
    return _pack_d(float_value(value)).hex()


# -- jsonb text output emulation -------------------------------------------------------

class _Num:
    __slots__ = ("text",)

    def __init__(self, text):
        self.text = text


def _reject_constant(name):
    raise CellError("JSON contains NaN/Infinity (not JSON, PostgreSQL rejects it)")


def _pairs(pairs):
    return dict(pairs)  # last duplicate wins, like jsonb


def _num_text(lit: str) -> str:
    """PostgreSQL numeric_out of numeric_in(lit) for a JSON number literal."""
    d = Decimal(lit)
    check_numeric(d)
    # numeric_in keeps the display scale max(0, fraction digits - exponent)
    return numeric_plain(d)


_ESC = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
        "\t": "\\t"}
_NEEDS_ESC = re.compile(r'["\\\x00-\x1f]')


def _escape_json(s: str) -> str:
    """PostgreSQL escape_json(): the named escapes, other controls as \\u00xx."""
    if "\x00" in s:
        raise CellError("JSON string contains \\u0000 (jsonb cannot store it)")
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        raise CellError("JSON string contains an unpaired surrogate escape") from None
    if _NEEDS_ESC.search(s):
        s = _NEEDS_ESC.sub(lambda m: _ESC.get(m.group()) or "\\u%04x" % ord(m.group()), s)
    return '"' + s + '"'


def _key_order(k: str):
    b = k.encode("utf-8", "surrogatepass")
    return (len(b), b)


def _dump(v, out: list):
    if isinstance(v, dict):
        if not v:
            out.append("{}")
            return
        out.append("{")
        first = True
        for k in sorted(v, key=_key_order):
            if not first:
                out.append(", ")
            first = False
            out.append(_escape_json(k))
            out.append(": ")
            _dump(v[k], out)
        out.append("}")
    elif isinstance(v, list):
        if not v:
            out.append("[]")
            return
        out.append("[")
        for i, item in enumerate(v):
            if i:
                out.append(", ")
            _dump(item, out)
        out.append("]")
    elif isinstance(v, str):
        out.append(_escape_json(v))
    elif isinstance(v, _Num):
        out.append(_num_text(v.text))
    elif v is True:
        out.append("true")
    elif v is False:
        out.append("false")
    elif v is None:
        out.append("null")
    else:  # pragma: no cover - json.loads yields nothing else
        raise CellError("unexpected JSON value")


def jsonb_text(text) -> str:
    """What PostgreSQL prints for ``text::jsonb``; CellError when it would refuse it."""
    if type(text) is not str:
        raise CellError("JSON cell is not TEXT")
    try:
        v = json.loads(text, parse_float=_Num, parse_int=_Num,
                       parse_constant=_reject_constant, object_pairs_hook=_pairs)
    except CellError:
        raise
    except (ValueError, RecursionError):
        raise CellError("TEXT does not parse as JSON") from None
    out: list = []
    _dump(v, out)
    return "".join(out)


# -- payloads (text, used to name keys) ---------------------------------------------------------

def text_payload(value) -> str:
    """Text logical type: TEXT as is; INTEGER/REAL (mixed column) as their COPY text."""
    t = type(value)
    if t is str:
        return value
    if t is int:
        return str(value)
    if t is float:
        return repr(value)
    raise CellError("BLOB in a text column")


def integer_payload(value) -> str:
    if type(value) is not int:
        raise CellError("non-INTEGER value in an integer column")
    return str(value)


def boolean_payload(value) -> str:
    if value == 1 and type(value) is int:
        return "t"
    if value == 0 and type(value) is int:
        return "f"
    raise CellError("boolean value not 0/1")


def bytea_payload(value) -> str:
    return bytes_value(value).hex()


PAYLOAD = {
    "integer": integer_payload,
    "boolean": boolean_payload,
    "float": float_payload,
    "numeric": lambda v: numeric_payload(numeric_decimal(v)),
    "text": text_payload,
    "timestamp": lambda v: str(timestamp_ms(v)),
    "date": date_text,
    "bytea": bytea_payload,
    "json": jsonb_text,
}


def payload(logical: str, value) -> str:
    """Canonical text of a cell (used to name keys; the digest uses ``cell``)."""
    return PAYLOAD[logical](value)


# -- the canonical row record and the digest (FORMAT.md "Content digest", v2) ------------
#
# A row hashes as the bytes PostgreSQL's record_send() gives for a ROW() of the
# canonical values: int32 column count, then per column int32 type OID, int32 length
# (-1 for NULL) and the type's binary send form.  PostgreSQL builds that in C from
# stored values (no text formatting: half the CPU of a text row string), and Python
# builds it with struct.

OID = {"integer": 20, "boolean": 16, "float": 701, "numeric": 1700, "text": 25,
       "timestamp": 1114, "date": 1082, "bytea": 17, "json": 3802}
PG_EPOCH_MS = 946_684_800_000              # 2000-01-01 00:00:00 UTC, in ms since 1970
PG_EPOCH_ORDINAL = date(2000, 1, 1).toordinal()
pack_hdr = struct.Struct(">Ii").pack
pack_i8 = struct.Struct(">Iiq").pack
pack_f8 = struct.Struct(">Iid").pack
pack_i4 = struct.Struct(">Iii").pack
_ncols = struct.Struct(">i").pack
NULL_CELL = {lg: pack_hdr(oid, -1) for lg, oid in OID.items()}
BOOL_CELL = {True: pack_hdr(OID["boolean"], 1) + b"\x01",
             False: pack_hdr(OID["boolean"], 1) + b"\x00"}


def numeric_send(d: Decimal) -> bytes:
    """numeric_send() of ``trim_scale(d)``: ndigits, weight, sign, dscale, then base-10000
    digits, leading and trailing zero digits stripped (as PostgreSQL stores them)."""
    s = numeric_payload(d)                   # plain, trailing fractional zeros removed
    neg = s.startswith("-")
    ip, _, fp = s.lstrip("-").partition(".")
    ip = ip.zfill(-(-len(ip) // 4) * 4)
    fp_padded = fp + "0" * (-len(fp) % 4)
    digits = [int(ip[i:i + 4]) for i in range(0, len(ip), 4)]
    weight = len(digits) - 1
    digits += [int(fp_padded[i:i + 4]) for i in range(0, len(fp_padded), 4)]
    while digits and digits[0] == 0:
        digits.pop(0)
        weight -= 1
    while digits and digits[-1] == 0:
        digits.pop()
    if not digits:
        weight, neg = 0, False
    body = struct.pack(f">hhHH{len(digits)}h", len(digits), weight,
                       0x4000 if neg else 0, len(fp), *digits)
    return pack_hdr(OID["numeric"], len(body)) + body


def _varlena(oid: int, b: bytes) -> bytes:
    return pack_hdr(oid, len(b)) + b


def integer_cell(value) -> bytes:
    if type(value) is not int:
        raise CellError("non-INTEGER value in an integer column")
    return pack_i8(OID["integer"], 8, value)


def float_cell(value) -> bytes:
    return pack_f8(OID["float"], 8, float_value(value))


def timestamp_cell(value) -> bytes:
    return pack_i8(OID["timestamp"], 8, (timestamp_ms(value) - PG_EPOCH_MS) * 1000)


def date_cell(value) -> bytes:
    days = date.fromisoformat(date_text(value)).toordinal() - PG_EPOCH_ORDINAL
    return pack_i4(OID["date"], 4, days)


CELL = {
    "integer": integer_cell,
    "boolean": lambda v: BOOL_CELL[boolean_payload(v) == "t"],
    "float": float_cell,
    "numeric": lambda v: numeric_send(numeric_decimal(v)),
    "text": lambda v: _varlena(OID["text"], text_payload(v).encode("utf-8")),
    "timestamp": timestamp_cell,
    "date": date_cell,
    "bytea": lambda v: _varlena(OID["bytea"], bytes_value(v)),
    "json": lambda v: _varlena(OID["json"], b"\x01" + jsonb_text(v).encode("utf-8")),
}


def bytes_value(value) -> bytes:
    if type(value) is not bytes:
        raise CellError("non-BLOB value in a bytea column")
    return value


def cell(logical: str, value) -> bytes:
    """One column of the canonical record: OID, length and binary value (NULL: -1)."""
    if value is None:
        return NULL_CELL[logical]
    return CELL[logical](value)


def cell_func(logical: str):
    """Per-cell record function (None -> the NULL cell) for the scanner's Python path."""
    f, null = CELL[logical], NULL_CELL[logical]

    def enc(value):
        return null if value is None else f(value)
    return enc


def row_header(ncols: int) -> bytes:
    return _ncols(ncols)


def row_record(logicals: list[str], values) -> bytes:
    return _ncols(len(logicals)) + b"".join(cell(lg, v) for lg, v in zip(logicals, values))


def row_hash(record: bytes) -> bytes:
    return sha256(record).digest()


class Digest:
    """Order-independent, duplicate-sensitive digest of row records."""

    __slots__ = ("count", "s1", "s2")

    def __init__(self):
        self.count = 0
        self.s1 = 0
        self.s2 = 0

    def add(self, record: bytes):
        a, b = unpack_sums(row_hash(record))
        self.count += 1
        self.s1 += a
        self.s2 += b

    def value(self) -> str:
        return format_digest(self.count, self.s1, self.s2)


DIGEST_VERSION = "v2"


def format_digest(count: int, s1: int, s2: int) -> str:
    return "%s:%d:%016x:%016x" % (DIGEST_VERSION, count, s1 % MOD64, s2 % MOD64)
