"""Reading the SQLite source without ever changing it, and reading its schema.

* ``mode=ro`` URI: this process cannot write the file.
* A WAL-mode database whose ``-wal`` is absent would get ``-wal``/``-shm`` files
  created by a mere reader (owned by us, left behind).  There the main file *is* the
  whole database, so it is read with ``immutable=1`` (no side files) and the result
  is only trusted if the file did not change meanwhile (inode, size, mtime, no
  ``-wal`` appeared); otherwise we retry and finally read it normally, the side files
  then existing already.
* ``snapshot()`` uses the SQLite backup API in one step, i.e. inside one read
  transaction: one consistent committed state even while another process writes.
"""
from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path
from urllib.parse import quote

from .errors import SourceError, UsageError


def qi(name: str) -> str:
    """SQLite identifier quoting."""
    return '"' + name.replace('"', '""') + '"'


def _uri(path: Path, extra: str = "") -> str:
    return "file:" + quote(str(path)) + "?mode=ro" + extra


def _is_wal(path: Path) -> bool:
    with open(path, "rb") as f:
        header = f.read(100)
    if len(header) < 100 or not header.startswith(b"SQLite format 3\x00"):
        raise SourceError(f"not a SQLite 3 database: {path}")
    return header[18] == 2 and header[19] == 2


def _state(path: Path):
    st = path.stat()
    return (st.st_ino, st.st_size, st.st_mtime_ns, os.path.exists(str(path) + "-wal"))


def source_path(path) -> Path:
    p = Path(path)
    if not p.exists():
        raise UsageError(f"SQLite file not found: {p}")
    if not p.is_file():
        raise UsageError(f"not a regular file: {p}")
    return p.resolve()


class _Conn(sqlite3.Connection):
    pgcutover_state = None


def _open(uri: str) -> sqlite3.Connection:
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=60,
                           check_same_thread=False, factory=_Conn)
    conn.execute("PRAGMA query_only=1")
    return conn


def snapshot(path, dest) -> dict:
    """Copy one consistent state of ``path`` into the new file ``dest`` (mode 0600).

    Returns how it was read.  The source is never written and never gets side files
    it did not already have."""
    src = source_path(path)
    dest = Path(dest)
    fd = os.open(str(dest), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    for attempt in range(5):
        immutable = _is_wal(src) and not os.path.exists(str(src) + "-wal")
        before = _state(src)
        try:
            conn = _open(_uri(src, "&immutable=1" if immutable else ""))
        except sqlite3.Error as exc:
            raise SourceError(f"cannot open SQLite source read-only: {exc}") from None
        dst = sqlite3.connect(str(dest), isolation_level=None)
        try:
            dst.execute("PRAGMA journal_mode=OFF")
            dst.execute("PRAGMA synchronous=OFF")
            conn.backup(dst)        # pages=-1: one step, one read transaction
            dst.execute("PRAGMA journal_mode=DELETE")
        except sqlite3.Error as exc:
            raise SourceError(f"SQLite backup of the source failed: {exc}") from None
        finally:
            dst.close()
            conn.close()
        if not immutable or _state(src) == before:
            os.chmod(dest, 0o600)
            return {"method": "backup-api", "immutable_read": immutable,
                    "attempts": attempt + 1}
    raise SourceError("the source kept changing while it was read without side files; "
                      "retry, or stop the writer")


def open_readonly(path) -> sqlite3.Connection:
    """Read-only connection following the same no-side-files rule as ``snapshot``.

    Callers that need consistency across statements run them inside one
    ``BEGIN`` ... ``ROLLBACK`` (for an immutable read, ``verify_unchanged`` tells
    whether the file changed meanwhile)."""
    src = source_path(path)
    immutable = _is_wal(src) and not os.path.exists(str(src) + "-wal")
    try:
        conn = _open(_uri(src, "&immutable=1" if immutable else ""))
    except sqlite3.Error as exc:
        raise SourceError(f"cannot open SQLite source read-only: {exc}") from None
    conn.pgcutover_state = (src, immutable, _state(src))
    return conn


def changed_since_open(conn) -> bool:
    src, immutable, before = conn.pgcutover_state
    return immutable and _state(src) != before


def open_snapshot(path) -> sqlite3.Connection:
    """Our own private snapshot file: nobody else writes it."""
    conn = sqlite3.connect(_uri(Path(path), "&immutable=1"), uri=True,
                           isolation_level=None, check_same_thread=False)
    return conn


# -- schema ------------------------------------------------------------------------

_FK_ACTION = {"NO ACTION", "RESTRICT", "SET NULL", "SET DEFAULT", "CASCADE"}


def _collate_of(table_sql: str, column: str) -> str | None:
    """COLLATE clause of a column definition (PRAGMA table_info does not report it)."""
    pat = re.compile(r'(?:^|[(,])\s*(?:"%s"|`%s`|\[%s\]|%s)\s+[^,]*?\bCOLLATE\s+"?(\w+)"?'
                     % ((re.escape(column.replace('"', '""')),) + (re.escape(column),) * 3),
                     re.IGNORECASE | re.DOTALL)
    m = pat.search(table_sql or "")
    if not m:
        return None
    coll = m.group(1).upper()
    return None if coll == "BINARY" else coll


def tables(conn) -> list[dict]:
    """User tables in creation order with their sql (no sqlite_* internals)."""
    rows = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type='table' "
        "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY rowid").fetchall()
    out = []
    for name, sql in rows:
        if sql and re.match(r"\s*CREATE\s+VIRTUAL\s", sql, re.IGNORECASE):
            raise SourceError("virtual tables cannot be exported", table=name)
        out.append({"name": name, "sql": sql or ""})
    return out


def table_schema(conn, name: str, sql: str) -> dict:
    """Columns, keys, indexes and FKs of one table in manifest shape (no stats)."""
    q = qi(name)
    cols = []
    # table_xinfo also lists generated columns (hidden 2/3): they are not exported
    for cid, cname, ctype, notnull, dflt, pk, hidden in conn.execute(
            f"PRAGMA table_xinfo({q})"):
        if hidden:
            if hidden in (2, 3):
                raise SourceError("generated columns are not supported", table=name,
                                  column=cname)
            continue
        cols.append({"name": cname, "declared": ctype or "", "notnull": bool(notnull),
                     "default": dflt, "pk": pk, "collate": _collate_of(sql, cname)})
    without_rowid = bool(re.search(r"\)\s*WITHOUT\s+ROWID\s*;?\s*$", sql, re.IGNORECASE))
    pk_cols = [c["name"] for c in sorted((c for c in cols if c["pk"]), key=lambda c: c["pk"])]
    autoinc = None
    if (len(pk_cols) == 1 and not without_rowid
            and next(c for c in cols if c["name"] == pk_cols[0])["declared"].upper() == "INTEGER"):
        autoinc = {"column": pk_cols[0],
                   "keyword": bool(re.search(r"\bAUTOINCREMENT\b", sql, re.IGNORECASE))}
    unique, indexes = [], []
    for _seq, iname, is_unique, origin, partial in conn.execute(f"PRAGMA index_list({q})"):
        if origin == "pk":
            continue
        xinfo = [r for r in conn.execute(f"PRAGMA index_xinfo({qi(iname)})") if r[5]]
        icols = [r[2] for r in xinfo]
        if any(c is None for c in icols):
            raise SourceError("expression indexes are not supported", table=name,
                              key=iname)
        collate = [None if (r[4] or "BINARY").upper() == "BINARY" else r[4].upper()
                   for r in xinfo]
        isql = conn.execute("SELECT sql FROM sqlite_master WHERE type='index' AND name=?",
                            (iname,)).fetchone()
        isql = isql[0] if isql else None
        where = None
        if partial and isql:
            m = re.search(r"\bWHERE\b(.*)$", isql, re.IGNORECASE | re.DOTALL)
            where = m.group(1).strip() if m else None
        if is_unique and not partial:
            unique.append({"name": iname, "columns": icols, "collate": collate,
                           "origin": "constraint" if origin == "u" else "index"})
        else:
            indexes.append({"name": iname, "columns": icols, "unique": bool(is_unique),
                            "where": where, "collate": collate,
                            "desc": [bool(r[3]) for r in xinfo]})
    fks: dict[int, dict] = {}
    for fid, seq, ref, frm, to, on_update, on_delete, _match in conn.execute(
            f"PRAGMA foreign_key_list({q})"):
        fk = fks.setdefault(fid, {"columns": [], "ref_table": ref, "ref_columns": [],
                                  "on_delete": on_delete.upper(),
                                  "on_update": on_update.upper()})
        fk["columns"].append(frm)
        fk["ref_columns"].append(to)
    fk_list = [fks[k] for k in sorted(fks, reverse=True)]  # PRAGMA lists them in reverse
    return {"name": name, "columns": cols, "without_rowid": without_rowid,
            "primary_key": pk_cols, "autoincrement": autoinc, "unique": unique,
            "indexes": indexes, "foreign_keys": fk_list}


def resolve_fk_targets(schemas: dict):
    """Fill ``ref_columns`` of FKs that reference the parent's primary key implicitly."""
    for s in schemas.values():
        for fk in s["foreign_keys"]:
            if any(c is None for c in fk["ref_columns"]):
                parent = schemas.get(fk["ref_table"])
                if parent and len(parent["primary_key"]) == len(fk["columns"]):
                    fk["ref_columns"] = list(parent["primary_key"])


def load_order(schemas: dict) -> tuple[list[str], list[list[str]], list[str]]:
    """Parents before children (Kahn, ties in creation order).

    Returns (order, cycles, self_referencing).  Tables in a FK cycle are appended in
    creation order; each strongly connected group is reported as one cycle."""
    names = list(schemas)
    pos = {n: i for i, n in enumerate(names)}
    deps = {n: set() for n in names}
    selfref = []
    for n, s in schemas.items():
        for fk in s["foreign_keys"]:
            ref = fk["ref_table"]
            if ref == n:
                if n not in selfref:
                    selfref.append(n)
            elif ref in deps:
                deps[n].add(ref)
    order, done = [], set()
    remaining = set(names)
    while True:
        ready = sorted((n for n in remaining if deps[n] <= done), key=pos.get)
        if not ready:
            break
        n = ready[0]
        order.append(n)
        done.add(n)
        remaining.discard(n)
    cycles = _sccs({n: deps[n] & remaining for n in remaining}, pos) if remaining else []
    order.extend(sorted(remaining, key=pos.get))
    return order, cycles, selfref


def _sccs(graph: dict, pos: dict) -> list[list[str]]:
    """Tarjan; only components with more than one table (self loops are separate)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp, key=pos.get))

    for v in sorted(graph, key=pos.get):
        if v not in index:
            visit(v)
    return out


def autoincrement_high_water(conn, schema: dict) -> dict | None:
    """``{"column", "high_water"}``: max(sqlite_sequence.seq, max(id)), 0 if empty."""
    ai = schema["autoincrement"]
    if not ai:
        return None
    seq = 0
    has_seq = conn.execute("SELECT 1 FROM sqlite_master WHERE name='sqlite_sequence'").fetchone()
    if has_seq:
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name=?",
                           (schema["name"],)).fetchone()
        seq = int(row[0]) if row and row[0] is not None else 0
    mx = conn.execute(f"SELECT max(rowid) FROM {qi(schema['name'])}").fetchone()[0] or 0
    return {"column": ai["column"], "high_water": max(seq, int(mx))}
