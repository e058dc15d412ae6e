"""The cutover runbook end to end on this machine, with real components: the throwaway
PostgreSQL of provision.yml, the sample SQLite database and the sample app, driven by
playbooks/rehearsal_setup.yml, migrate.yml and rollback.yml through ansible-playbook.

* full run: phases T-60/T-30, an app write (so T-15 must re-export), migrate.yml resumes;
  every digest matches, the app serves from PostgreSQL; rollback.yml puts it back on the
  unchanged SQLite file; a second rollback.yml is harmless;
* a failure injected at T-10 (a .rows file corrupted after verify-export) rolls back
  automatically: the app serves from SQLite with its data unchanged, and the phases
  refuse to run out of order afterwards;
* two app servers are stopped, switched, started and rolled back together; rollback.yml
  refuses while PostgreSQL holds a write made after the cutover, unless forced.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import urllib.request
from pathlib import Path

import pytest

from pgcutover.throwaway_cluster import free_port

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = REPO / ".venv" / "bin"
pytestmark = [pytest.mark.slow, pytest.mark.ansible, pytest.mark.pg]


@pytest.fixture(scope="module")
def rehearsal():
    # Not under pytest's tmp_path: the postgres OS user must traverse the directory.
    base = Path(tempfile.mkdtemp(prefix="pgcutover-rehearsal-", dir="/tmp"))
    os.chmod(base, 0o755)
    r = Rehearsal(base, free_port(), free_port())
    yield r
    r.destroy()


class Rehearsal:
    def __init__(self, base: Path, pg_port: int, app_port: int):
        self.base, self.app_port = base, app_port
        self.extra = {"pgcutover_rehearsal_dir": str(base), "postgresql_local_port": pg_port,
                      "pgcutover_rehearsal_app_port": app_port}
        self.sqlite = base / "app" / "prisma" / "dev.db"
        self.env_file = base / "app" / ".env"

    def play(self, playbook: str, *args, **extra) -> subprocess.CompletedProcess:
        ev = json.dumps({**self.extra, **extra})
        return subprocess.run(
            [str(VENV_BIN / "ansible-playbook"), "-i", "inventories/local", f"playbooks/{playbook}",
             "-e", ev, *args],
            cwd=REPO, capture_output=True, text=True, timeout=900,
            env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"})

    def ok(self, playbook: str, *args, **extra) -> subprocess.CompletedProcess:
        res = self.play(playbook, *args, **extra)
        assert res.returncode == 0, f"{playbook} failed:\n{res.stdout[-6000:]}\n{res.stderr[-2000:]}"
        return res

    def run_record(self) -> dict:
        state = self.base / "state"
        run_id = (state / "current").read_text().strip()
        return json.loads((state / "runs" / f"{run_id}.json").read_text())

    def summary(self) -> dict:
        state = self.base / "state"
        run_id = (state / "current").read_text().strip()
        return json.loads((state / "runs" / f"{run_id}.summary.json").read_text())

    def http(self, path, method="GET", body=None, token=None):
        req = urllib.request.Request(f"http://127.0.0.1:{self.app_port}{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None)
        req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def login(self) -> str:
        return self.http("/api/auth/login", "POST", {"username": "admin", "password": "admin123"})["token"]

    def database_url(self) -> str:
        for line in self.env_file.read_text().splitlines():
            if line.startswith("DATABASE_URL="):
                return line.split("=", 1)[1].strip('"')
        raise AssertionError("no DATABASE_URL in the env file")

    def provider(self) -> str:
        text = (self.base / "app" / "prisma" / "schema.prisma").read_text()
        block = text[text.index("datasource db"):]
        return block.split('provider = "', 1)[1].split('"', 1)[0]

    def destroy(self):
        env = {**os.environ, "PFA_PIDFILE": str(self.base / "app/run/pfa-app.pid")}
        subprocess.run([str(REPO / "examples/pfa_app/bin/pfa-app-ctl"), "stop"], env=env,
                       capture_output=True)
        for pid in self.base.glob("**/postmaster.pid"):
            subprocess.run(["runuser", "-u", "postgres", "--",
                            "/usr/lib/postgresql/15/bin/pg_ctl", "-D", str(pid.parent), "-m",
                            "immediate", "-w", "stop"], capture_output=True, cwd="/")
        shutil.rmtree(self.base, ignore_errors=True)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_full_cutover_with_reexport_then_rollback(rehearsal):
    r = rehearsal
    r.ok("rehearsal_setup.yml")
    assert r.http("/health")["database"] == "sqlite"

    # T-60 and T-30 only, then the app writes: T-15 must see it and export again.
    r.ok("migrate.yml", "--tags", "t_minus_60,t_minus_30", cutover_state_new_run=True)
    token = r.login()
    org = r.http("/api/organizations", token=token)[0]["id"]
    r.http("/api/sync-logs", "POST", {"organizationId": org, "syncType": "full",
                                      "status": "completed"}, token=token)

    # Out of order: T-10 alone is refused while T-15 is not done.
    res = r.play("phase_t_minus_10_import_verify.yml")
    assert res.returncode != 0 and "earlier phase(s) not done" in res.stdout

    # migrate.yml resumes: done phases are skipped, T-15 re-exports.
    res = r.ok("migrate.yml")
    assert "Re-export | Export again" in res.stdout and "changed: [localhost]" in res.stdout
    s = r.summary()
    assert s["status"] == "completed" and s["reexported"] is True
    assert s["all_digests_matched"] and s["digests_matched"] == "13/13"
    assert s["tables"]["sync_logs"]["rows"] == 1 and s["tables"]["users"]["rows"] == 7
    assert 0 < s["downtime_s"] < s["total_s"]
    assert [p["phase"] for p in s["phases"]][-1] == "t_plus_60_optimize"
    assert all(p["status"] == "done" for p in s["phases"])
    assert r.http("/health")["database"] == "postgresql"
    assert r.database_url().startswith("postgresql://") and r.provider() == "postgresql"
    assert oct(r.env_file.stat().st_mode & 0o777) == "0o600"
    pre = r.run_record()["data"]["pre_migration"]["sha256"]
    assert sha256(r.sqlite) == pre
    # A second migrate.yml changes nothing (the run is complete).
    res = r.ok("migrate.yml")
    assert "changed=0" in res.stdout.split("PLAY RECAP")[-1]

    r.ok("rollback.yml")
    assert r.http("/health")["database"] == "sqlite"
    assert r.database_url().startswith("file:") and r.provider() == "sqlite"
    assert sha256(r.sqlite) == pre
    assert r.run_record()["status"] == "rolled_back"
    # The app writes on SQLite again; a second rollback must not "restore" over it.
    token = r.login()
    r.http("/api/sync-logs", "POST", {"organizationId": org, "syncType": "full",
                                      "status": "completed"}, token=token)
    after_write = sha256(r.sqlite)
    r.ok("rollback.yml")
    assert sha256(r.sqlite) == after_write
    assert r.http("/health")["database"] == "sqlite"


def test_failure_at_t_minus_10_rolls_back_to_unchanged_sqlite(rehearsal):
    r = rehearsal
    r.ok("rehearsal_setup.yml")
    before = sha256(r.sqlite)
    token = r.login()
    orgs_before = r.http("/api/organizations", token=token)

    res = r.play("migrate.yml", cutover_state_new_run=True, pgcutover_test_inject="corrupt_rows")
    assert res.returncode != 0
    assert "t_minus_10_import_verify failed" in res.stdout and "Rolled back" in res.stdout
    run = r.run_record()
    assert run["status"] == "rolled_back"
    assert run["phases"]["t_minus_10_import_verify"]["status"] == "failed"
    assert run["rollbacks"][-1]["status"] == "rolled_back"
    assert run["rollbacks"][-1]["trigger"] == "t_minus_10_import_verify"

    # Serving from SQLite, same bytes as before the cutover, same data through the API.
    assert r.http("/health")["database"] == "sqlite"
    assert r.database_url().startswith("file:") and r.provider() == "sqlite"
    assert sha256(r.sqlite) == before == run["data"]["pre_migration"]["sha256"]
    assert r.http("/api/organizations", token=r.login()) == orgs_before

    # The rolled-back run cannot be continued out of order.
    res = r.play("phase_t_minus_5_start_smoke.yml")
    assert res.returncode != 0 and "no run in progress" in res.stdout


def test_two_app_servers_switch_and_roll_back_together(rehearsal):
    """app_servers with two hosts (the second app instance on its own port and env file,
    on the same SQLite file): both are stopped, switched, started and rolled back; the
    rollback refuses while PostgreSQL holds a post-cutover write, unless forced."""
    r = rehearsal
    r.ok("rehearsal_setup.yml")
    app2, port2 = r.base / "app2", free_port()
    (app2 / "prisma").mkdir(parents=True)
    (app2 / "run").mkdir()
    shutil.copy(r.base / "app/prisma/schema.prisma", app2 / "prisma/schema.prisma")
    (app2 / ".env").write_text(f'DATABASE_URL="file:{r.sqlite}"\n')
    os.chmod(app2 / ".env", 0o600)
    env2 = {"PFA_APP_DIR": str(REPO / "examples/pfa_app"), "PFA_ENV_FILE": str(app2 / ".env"),
            "PFA_PORT": str(port2), "PFA_PIDFILE": str(app2 / "run/pfa-app.pid"),
            "PFA_LOG": str(app2 / "run/pfa-app.log"), "PFA_PYTHON": str(VENV_BIN / "python")}
    inv = r.base / "app2-inventory.yml"
    inv.write_text(json.dumps({"all": {"children": {"app_servers": {"hosts": {"app2": {
        "ansible_connection": "local",
        "ansible_python_interpreter": str(VENV_BIN / "python"),
        # Hosts from this extra inventory source have their own inventory_dir.
        "pgcutover_repo_dir": str(REPO),
        "app_control_app_dir": str(app2),
        "app_control_command_env": env2,
        "app_control_base_url": f"http://127.0.0.1:{port2}"}}}}}}))
    ctl = str(REPO / "examples/pfa_app/bin/pfa-app-ctl")
    subprocess.run([ctl, "start"], env={**os.environ, **env2}, check=True, capture_output=True)
    try:
        def health2():
            with urllib.request.urlopen(f"http://127.0.0.1:{port2}/health", timeout=10) as resp:
                return json.loads(resp.read())["database"]

        assert health2() == "sqlite"
        before = sha256(r.sqlite)
        r.ok("migrate.yml", "-i", str(inv), cutover_state_new_run=True)
        assert r.http("/health")["database"] == "postgresql" and health2() == "postgresql"
        assert (app2 / ".env").read_text().startswith('DATABASE_URL="postgresql://')
        backups = {b[0] for b in r.run_record()["data"]["config_backups"]}
        assert backups == {"localhost", "app2"}

        # The app writes to PostgreSQL: rollback.yml refuses before stopping anything...
        token = r.login()
        org = r.http("/api/organizations", token=token)[0]["id"]
        r.http("/api/sync-logs", "POST", {"organizationId": org, "syncType": "full",
                                          "status": "completed"}, token=token)
        res = r.play("rollback.yml", "-i", str(inv))
        assert res.returncode != 0 and "rollback_force=true" in res.stdout
        assert "sync_logs" in res.stdout
        assert r.http("/health")["database"] == "postgresql" and health2() == "postgresql"
        assert r.run_record()["rollbacks"][-1]["status"] == "refused"
        # ...unless forced.
        r.ok("rollback.yml", "-i", str(inv), rollback_force=True)
        assert r.http("/health")["database"] == "sqlite" and health2() == "sqlite"
        assert (app2 / ".env").read_text() == f'DATABASE_URL="file:{r.sqlite}"\n'
        assert sha256(r.sqlite) == before
    finally:
        subprocess.run([ctl, "stop"], env={**os.environ, **env2}, capture_output=True)
