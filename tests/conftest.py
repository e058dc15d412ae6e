"""Shared fixtures: a real throwaway PostgreSQL 15 cluster and sample SQLite files."""
from __future__ import annotations

import uuid

import pytest

from pgcutover.throwaway_cluster import ThrowawayCluster


@pytest.fixture(scope="session")
def pg_cluster():
    """One real PostgreSQL cluster for the whole test session (port picked free).

    Its directory comes from mkdtemp under /tmp, because pytest's own tmp dirs are
    0700 root and the server runs as the postgres user."""
    cluster = ThrowawayCluster()
    cluster.start()
    yield cluster
    cluster.destroy()


@pytest.fixture
def pg_db(pg_cluster):
    """A fresh, empty database per test; returns its libpq DSN (password via passfile)."""
    import psycopg2

    name = "t_" + uuid.uuid4().hex[:12]
    conn = psycopg2.connect(pg_cluster.dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    yield pg_cluster.dsn_for(name)
    conn = psycopg2.connect(pg_cluster.dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()
