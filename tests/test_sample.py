"""The sample database generator: the seed's shape, counts and conventions."""
from __future__ import annotations

import sqlite3

import pytest

from pgcutover import sample
from pgcutover.errors import UsageError


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    p = tmp_path_factory.mktemp("sample") / "app.db"
    info = sample.generate(p)
    return p, info


def test_baseline_counts_are_the_seeds(db):
    path, info = db
    assert info["counts"] == sample.BASELINE_COUNTS
    assert info["total"] == 67
    conn = sqlite3.connect(path)
    assert conn.execute('SELECT count(*) FROM "_prisma_migrations"').fetchone()[0] == 4
    for t, n in sample.BASELINE_COUNTS.items():
        assert conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] == n


def test_admin_password_verifies(db):
    path, _ = db
    conn = sqlite3.connect(path)
    h = conn.execute("SELECT passwordHash FROM users WHERE username='admin'").fetchone()[0]
    assert h.startswith("pbkdf2_sha256$100000$")
    assert sample.verify_password("admin123", h)
    assert not sample.verify_password("admin124", h)


def test_prisma_storage_conventions(db):
    path, _ = db
    conn = sqlite3.connect(path)
    mix = dict(conn.execute('SELECT typeof("createdAt"), count(*) FROM users GROUP BY 1'))
    assert mix == {"integer": 6, "text": 1}        # raw-SQL row: CURRENT_TIMESTAMP text
    assert conn.execute("SELECT DISTINCT typeof(isActive) FROM users").fetchall() == [("integer",)]
    assert conn.execute('SELECT typeof("inputCostPer1k") FROM ai_providers').fetchone() == ("real",)
    assert conn.execute("SELECT seq FROM sqlite_sequence WHERE name='sync_logs'").fetchone() == (1,)
    ddl = conn.execute("SELECT sql FROM sqlite_master WHERE name='users'").fetchone()[0]
    assert '"email" TEXT COLLATE NOCASE' in ddl
    ddl = conn.execute("SELECT sql FROM sqlite_master WHERE name='organizations'").fetchone()[0]
    assert '"settings" JSONB' in ddl
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    # the NOCASE unique index really is case-insensitive
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO users (id, username, email, passwordHash, updatedAt) "
                     "VALUES ('x', 'x', 'ADMIN@PFA.EXAMPLE.COM', 'h', 0)")


def test_deterministic(tmp_path):
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    sample.generate(a, pfa_records=500, seed=3)
    sample.generate(b, pfa_records=500, seed=3)
    dump = lambda p: list(sqlite3.connect(p).iterdump())  # noqa: E731
    assert dump(a) == dump(b)
    c = tmp_path / "c.db"
    sample.generate(c, pfa_records=500, seed=4)
    assert dump(a) != dump(c)


def test_pfa_scale_and_refuses_existing(tmp_path):
    p = tmp_path / "big.db"
    info = sample.generate(p, pfa_records=2000)
    assert info["counts"]["pfa_records"] == 2000
    conn = sqlite3.connect(p)
    assert conn.execute("SELECT count(*) FROM pfa_records WHERE typeof(createdAt)='text'"
                        ).fetchone()[0] == 3          # rows 0, 997, 1994
    with pytest.raises(UsageError):
        sample.generate(p)
