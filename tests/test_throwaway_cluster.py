"""The test cluster itself: real server, scram on TCP, password only in the passfile."""
import os
import stat

import psycopg2
import pytest


def test_cluster_accepts_passfile_and_refuses_wrong_password(pg_cluster):
    with psycopg2.connect(pg_cluster.dsn) as conn, conn.cursor() as cur:
        cur.execute("SHOW password_encryption")
        assert cur.fetchone()[0] == "scram-sha-256"
        cur.execute("SHOW data_checksums")
        assert cur.fetchone()[0] == "on"
    assert stat.S_IMODE(os.stat(pg_cluster.passfile).st_mode) == 0o600
    with pytest.raises(psycopg2.OperationalError):
        psycopg2.connect(host="127.0.0.1", port=pg_cluster.port, user="postgres",
                         password="wrong", dbname="postgres", passfile=os.devnull)
