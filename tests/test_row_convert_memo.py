"""The per-column memo and the unrolled epoch-ms conversion of timestamp cells
(row_convert.TableConverter.chunks): same bytes as the per-cell path across chunks and
over years 1..9999, dropped memo for high-cardinality columns, and a bad cell after the
memo is warm still names column and key (memoised, unrolled and mixed columns)."""
import io
import random

import pytest

from pgcutover.errors import ImportFailedError
from pgcutover.row_convert import MEMO_RATIO, TableConverter, format_ms


def _tinfo():
    cols = [("id", "integer", "bigint", "integer"),
            ("day", "timestamp", "timestamp(3)", "integer"),     # few distinct values
            ("at", "timestamp", "timestamp(3)", "integer"),      # all distinct
            ("mx", "timestamp", "timestamp(3)", "mixed")]
    return {"primary_key": ["id"],
            "columns": [{"name": n, "logical": lg, "pg_type": pg, "storage": st}
                        for n, lg, pg, st in cols]}


def _rows(n, seed=7):
    rnd = random.Random(seed)
    days = [1764028800000 + 86_400_000 * d for d in range(-40, 40)]
    rows = []
    for i in range(1, n + 1):
        day = rnd.choice(days) if i % 5 else None
        at = rnd.randrange(-62135596800000, 253402300799999 + 1)   # years 1..9999
        mx = rnd.choice([b"i%d" % rnd.choice(days), b"t2025-11-25 01:02:03"])
        rows.append((i, day, at, mx))
    return rows


def _line(i, day, at, mx):
    return b"%d\t%s\t%d\t%s\n" % (i, b"\\N" if day is None else b"%d" % day, at, mx)


def test_memo_output_equals_per_cell_formatting_across_chunks():
    rows = _rows(6000)
    data = b"".join(_line(*r) for r in rows)
    conv = TableConverter("t", _tinfo())
    out = b"".join(conv.chunks(io.BytesIO(data), chunk_bytes=8192)).split(b"\n")[:-1]
    assert len(out) == len(rows)
    for line, (i, day, at, mx) in zip(out, rows):
        c = line.split(b"\t")
        assert c[1] == (b"\\N" if day is None else format_ms(day))
        assert c[2] == format_ms(at)
        want = (format_ms(int(mx[1:])) if mx[:1] == b"i" else b"2025-11-25 01:02:03.000+00")
        assert c[3] == want
    assert MEMO_RATIO > 1


@pytest.mark.parametrize("bad,column", [
    (b"2501\t99999999999999999\t1\ti1\n", "day"),          # memoised column, year > 9999
    (b"2501\t1\t-62135596800001\ti1\n", "at"),             # unrolled column, before year 1
    (b"2501\t1\t1\ti253402300800000\n", "mx"),             # INTEGER cell of a mixed column
    (b"2501\t1\t1\ti12x\n", "mx"),                         # not a number
])
def test_bad_cell_after_warm_memo_names_column_and_key(bad, column):
    rows = _rows(3000)
    lines = [_line(*r) for r in rows]
    lines[2500] = bad
    conv = TableConverter("t", _tinfo())
    with pytest.raises(ImportFailedError) as exc:
        b"".join(conv.chunks(io.BytesIO(b"".join(lines)), chunk_bytes=4096))
    assert exc.value.column == column and exc.value.key == {"id": 2501}
