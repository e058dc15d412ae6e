"""The molecule rehearsal's own tools, on real PostgreSQL, and the scenarios' wiring.

The scenarios themselves run with scripts/molecule_all.sh (minutes); these tests keep
the pieces they rely on honest in seconds: the fault injector really interrupts a
COPY issued as application_name=pgcutover (and the data is rolled back), the target
fingerprint notices any change, the leftover-process check finds a process in the
rehearsal directory, and every playbook/test directory a scenario names exists.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg2
import pytest
import yaml

from pgcutover.throwaway_cluster import PG_BIN, ThrowawayCluster

ROOT = Path(__file__).resolve().parent.parent
MOLECULE = ROOT / "molecule"
FILES = MOLECULE / "shared" / "files"

# A client that COPYs 10 million rows slowly, as pgcutover's importer identifies itself.
SLOW_COPY = """
import io, sys, time, psycopg2
conn = psycopg2.connect(sys.argv[1], application_name="pgcutover")
class Rows(io.RawIOBase):
    n = 0
    def readable(self): return True
    def readinto(self, b):
        time.sleep(0.002)
        chunk = b"".join(b"%d\\n" % i for i in range(1000))
        b[:len(chunk)] = chunk
        self.n += 1
        return len(chunk) if self.n < 10000 else 0
conn.cursor().copy_expert("COPY t FROM STDIN", io.BufferedReader(Rows(), 65536))
conn.commit()
"""


def run_tool(name: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(FILES / name), *args], capture_output=True,
                          text=True, timeout=timeout)


def fingerprint(dsn: str) -> dict:
    proc = run_tool("target_fingerprint.py", "--dsn", dsn)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def execute(dsn: str, sql: str) -> None:
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql)
    conn.close()


@pytest.mark.pg
def test_fingerprint_notices_tables_rows_and_pgcutover_objects(pg_db):
    empty = fingerprint(pg_db)
    assert empty["relations"] == [] and empty["pgcutover_objects"] == []
    assert fingerprint(pg_db)["sha256"] == empty["sha256"]  # stable

    execute(pg_db, "CREATE TABLE t (a int NOT NULL)")
    with_table = fingerprint(pg_db)
    assert with_table["sha256"] != empty["sha256"]
    assert with_table["relations"] == [["public", "t", "r", "a integer not null"]]

    execute(pg_db, "INSERT INTO t VALUES (1)")
    with_row = fingerprint(pg_db)
    assert with_row["row_counts"] == {"public.t": 1}
    assert with_row["sha256"] != with_table["sha256"]

    execute(pg_db, "CREATE SCHEMA pgcutover; CREATE TABLE pgcutover.imports (id int)")
    assert fingerprint(pg_db)["pgcutover_objects"] == ["pgcutover.imports"]


def slow_copy(dsn: str) -> subprocess.Popen:
    execute(dsn, "CREATE TABLE IF NOT EXISTS t (a int)")
    return subprocess.Popen([sys.executable, "-c", SLOW_COPY, dsn],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.mark.pg
@pytest.mark.parametrize("via", ["tcp", "unix-socket"])
def test_injector_kills_the_copying_client_and_nothing_is_committed(pg_cluster, pg_db, via):
    client_dsn = pg_db if via == "tcp" else re.sub(
        r"host=\S+", f"host={pg_cluster.sockdir}", pg_db).replace(
        f"user={pg_cluster.superuser}", "user=postgres")
    client = slow_copy(client_dsn)
    try:
        proc = run_tool("kill_during_copy.py", "--dsn", pg_db, "--mode", "kill-client",
                        "--min-tuples", "5000", "--timeout", "30")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        report = json.loads(proc.stdout)
        assert report["killed_pid"] == client.pid
        assert report["tuples_processed"] >= 5000
        assert client.wait(timeout=10) == -9
    finally:
        if client.poll() is None:
            client.kill()
    assert fingerprint(pg_db)["row_counts"] == {"public.t": 0}


@pytest.mark.pg
def test_injector_crashes_the_server_mid_copy():
    # synchronous_commit on: the throwaway default (off) may lose the committed CREATE
    # TABLE in an immediate shutdown, which is not what this test is about.
    with ThrowawayCluster(settings={"synchronous_commit": "on"}) as cluster:
        client = slow_copy(cluster.dsn)
        proc = run_tool("kill_during_copy.py", "--dsn", cluster.dsn, "--mode", "crash-server",
                        "--pg-ctl", str(PG_BIN / "pg_ctl"), "--data-dir", str(cluster.data),
                        "--min-tuples", "5000", "--timeout", "30")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert client.wait(timeout=10) != 0
        assert not (cluster.data / "postmaster.pid").exists()
        cluster._run([str(PG_BIN / "pg_ctl"), "-D", str(cluster.data), "-w", "-l",
                      str(cluster.base / "server.log"), "start"])
        assert fingerprint(cluster.dsn)["row_counts"] == {"public.t": 0}


@pytest.mark.pg
def test_injector_reports_failure_when_no_copy_happens(pg_db):
    proc = run_tool("kill_during_copy.py", "--dsn", pg_db, "--mode", "kill-client",
                    "--timeout", "1")
    assert proc.returncode == 1
    assert "no pgcutover COPY" in json.loads(proc.stdout)["error"]


def test_leftover_processes_finds_a_process_working_in_the_directory():
    with tempfile.TemporaryDirectory() as d:
        def leftovers():
            return json.loads(run_tool("leftover_processes.py", d).stdout)
        assert leftovers() == []
        sleeper = subprocess.Popen(["sleep", "60"], cwd=d)
        try:
            assert [p["pid"] for p in leftovers()] == [sleeper.pid]
        finally:
            sleeper.kill()
            sleeper.wait()
        assert leftovers() == []


def scenarios() -> list[Path]:
    return sorted(p.parent for p in MOLECULE.glob("*/molecule.yml"))


def test_scenarios_name_existing_playbooks_and_test_directories():
    from molecule.model import schema_v3

    names = {s.name for s in scenarios()}
    assert {"default", "rollback", "faults", "docker"} <= names
    for scenario in scenarios():
        config = yaml.safe_load((scenario / "molecule.yml").read_text())
        assert not schema_v3.validate(config), scenario.name
        assert config["verifier"]["name"] == "testinfra"
        for playbook in config["ansible"]["playbooks"].values():
            assert (scenario / playbook).is_file(), f"{scenario.name}: {playbook}"
        assert (scenario / config["verifier"]["directory"]).is_dir()
        sequence = config["scenario"]["test_sequence"]
        assert sequence[0] == "destroy" and sequence[-1] == "destroy", scenario.name
        for step in sequence:
            action, *args = step.split(" ")
            for arg in args:
                target = scenario / arg
                assert target.is_dir() or target.is_file(), f"{scenario.name}: {step}"


def test_molecule_all_skips_docker_without_an_engine():
    text = (ROOT / "scripts" / "molecule_all.sh").read_text()
    assert "docker info" in text and "--exclude docker" in text
    assert os.access(ROOT / "scripts" / "molecule_all.sh", os.X_OK)
