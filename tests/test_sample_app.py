"""The PFA sample app, started for real with bin/pfa-app-ctl, over real databases."""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from pgcutover import sample
from pgcutover.source_backup import sqlite_holders
from pgcutover.throwaway_cluster import free_port

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "examples" / "pfa_app"
CTL = APP / "bin" / "pfa-app-ctl"
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")

sys.path.insert(0, str(APP))
from pfa_app.config import load_env_file, parse_database_url  # noqa: E402


class AppProc:
    """One app instance controlled through the ctl script, as the runbook does."""

    def __init__(self, workdir: Path, env_file: Path):
        self.port = free_port()
        self.env = dict(os.environ, PFA_APP_DIR=str(APP), PFA_ENV_FILE=str(env_file),
                        PFA_PORT=str(self.port), PFA_PIDFILE=str(workdir / "app.pid"),
                        PFA_LOG=str(workdir / "app.log"), PFA_PYTHON=sys.executable,
                        PFA_START_TIMEOUT="15", PFA_STOP_TIMEOUT="5")
        self.base = f"http://127.0.0.1:{self.port}"
        self.token = None

    def ctl(self, action: str, **extra) -> subprocess.CompletedProcess:
        return subprocess.run([str(CTL), action], env=dict(self.env, **extra),
                              capture_output=True, text=True, timeout=60)

    def request(self, method: str, path: str, body=None, token=True):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if token and self.token:
            req.add_header("Authorization", "Bearer " + self.token)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def login(self):
        status, body = self.request("POST", "/api/auth/login",
                                    {"username": "admin", "password": "admin123"}, token=False)
        assert status == 200, body
        self.token = body["token"]
        return body


_TEMPLATES: dict[int, Path] = {}


@pytest.fixture(scope="session", autouse=True)
def _sample_templates(tmp_path_factory):
    """Generate each sample size once per session (PBKDF2 hashing costs ~0.7 s)."""
    _TEMPLATES["dir"] = tmp_path_factory.mktemp("sample-templates")
    yield
    _TEMPLATES.clear()


def make_app_dir(root: Path, pfa_records: int = 40) -> tuple[Path, Path]:
    """An app checkout: .env + prisma/schema.prisma + prisma/dev.db (sample data)."""
    (root / "prisma").mkdir(parents=True)
    shutil.copy(APP / "prisma" / "schema.prisma", root / "prisma" / "schema.prisma")
    db = root / "prisma" / "dev.db"
    template = _TEMPLATES["dir"] / f"pfa{pfa_records}.db"
    if not template.exists():
        sample.generate(template, pfa_records=pfa_records)
    shutil.copyfile(template, db)
    env_file = root / ".env"
    env_file.write_text('# sample\nDATABASE_URL="file:./dev.db"\n')
    os.chmod(env_file, 0o600)
    return env_file, db


@pytest.fixture
def sqlite_app(tmp_path):
    env_file, db = make_app_dir(tmp_path / "app")
    app = AppProc(tmp_path, env_file)
    r = app.ctl("start")
    assert r.returncode == 0, r.stderr + r.stdout
    app.db = db
    yield app
    app.ctl("stop")


def _gone(pid: int) -> bool:
    """No process, or a zombie not yet reaped by init (it holds no files)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in "ZX"
    except FileNotFoundError:
        return True


# -- configuration -------------------------------------------------------------------

def test_env_file_and_urls(tmp_path):
    env = tmp_path / ".env"
    env.write_text('export A="x # not a comment"\nB=plain # comment\n# C=1\n'
                   "DATABASE_URL='file:./dev.db'\n")
    assert load_env_file(env) == {"A": "x # not a comment", "B": "plain",
                                  "DATABASE_URL": "file:./dev.db"}
    assert parse_database_url("file:./dev.db", tmp_path).sqlite_path == tmp_path / "dev.db"
    (tmp_path / "prisma").mkdir()
    (tmp_path / "prisma" / "schema.prisma").write_text("")
    # Prisma resolves relative SQLite paths against the schema directory.
    assert parse_database_url("file:./dev.db?connection_limit=1", tmp_path).sqlite_path == \
        tmp_path / "prisma" / "dev.db"
    db = parse_database_url("postgresql://app%40corp:p%40ss%3Aw%2Frd@db.example:6543/pfa%2Dprod"
                            "?schema=tenant_a&connection_limit=5&pool_timeout=10&sslmode=require",
                            tmp_path)
    assert db.kind == "postgresql" and db.schema == "tenant_a"
    assert db.connect_kwargs == {"host": "db.example", "port": 6543, "user": "app@corp",
                                 "password": "p@ss:w/rd", "dbname": "pfa-prod",
                                 "sslmode": "require", "connect_timeout": "5"}
    assert "p@ss" not in repr(db)


# -- the app on SQLite -----------------------------------------------------------------

def test_health_login_and_auth(sqlite_app):
    app = sqlite_app
    assert app.request("GET", "/health") == (200, {"status": "ok", "database": "sqlite",
                                                  "users": 7})
    assert app.request("GET", "/api/organizations")[0] == 401
    for creds in ({"username": "admin", "password": "wrong"},
                  {"username": "nobody", "password": "admin123"}):
        assert app.request("POST", "/api/auth/login", creds, token=False)[0] == 401
    assert app.request("POST", "/api/auth/login", {"username": "admin"}, token=False)[0] == 400
    body = app.login()
    assert body["user"]["username"] == "admin" and body["user"]["role"] == "admin"
    app.token = body["token"][:-2] + ("AA" if not body["token"].endswith("AA") else "BB")
    assert app.request("GET", "/api/users")[0] == 401  # tampered signature


def test_read_endpoints(sqlite_app):
    app = sqlite_app
    app.login()
    status, users = app.request("GET", "/api/users")
    assert status == 200 and len(users) == 7
    assert not any("password" in k.lower() for u in users for k in u)
    assert "pbkdf2" not in json.dumps(users)
    # Mixed storage (INTEGER ms and TEXT) comes out in one ISO-8601 format.
    dkim = next(u for u in users if u["username"] == "dkim")
    assert ISO.match(dkim["createdAt"])
    conn = sqlite3.connect(app.db)
    raw = conn.execute("SELECT typeof(createdAt) FROM users WHERE username='dkim'").fetchone()
    conn.close()
    assert raw == ("text",)
    assert all(ISO.match(u["createdAt"]) and isinstance(u["isActive"], bool) for u in users)

    status, orgs = app.request("GET", "/api/organizations")
    assert status == 200 and len(orgs) == 28
    assert [o["id"] for o in orgs] == sorted(o["id"] for o in orgs)
    assert any(isinstance(o["settings"], dict) for o in orgs)
    org = orgs[0]
    assert app.request("GET", "/api/organizations/" + org["id"]) == (200, org)
    assert app.request("GET", "/api/organizations/does-not-exist")[0] == 404

    status, recs = app.request("GET", f"/api/pfa-records?organizationId={org['id']}&limit=3")
    assert status == 200 and 0 < len(recs) <= 3
    assert all(r["organizationId"] == org["id"] for r in recs)
    assert len(app.request("GET", "/api/pfa-records?limit=40")[1]) == 40
    assert app.request("GET", "/api/pfa-records?limit=x")[0] == 400


def test_write_endpoint_changes_the_database(sqlite_app):
    app = sqlite_app
    app.login()
    status, row = app.request("POST", "/api/sync-logs", {
        "organizationId": "org-x", "syncType": "pems", "status": "completed",
        "recordsProcessed": 12, "errorDetails": {"warnings": [1.0, "é"]}})
    assert status == 201, row
    assert row["recordsProcessed"] == 12 and ISO.match(row["startedAt"])
    assert row["errorDetails"] == {"warnings": [1, "é"]}
    conn = sqlite3.connect(app.db)
    stored = conn.execute('SELECT "id", typeof("startedAt") FROM sync_logs').fetchall()
    conn.close()
    # AUTOINCREMENT continues after the purged row; Prisma stores DateTime as INTEGER ms.
    assert stored == [(row["id"], "integer")] and row["id"] == 2
    assert app.request("POST", "/api/sync-logs", {"organizationId": "o"})[0] == 400


def test_stop_releases_the_sqlite_file(sqlite_app):
    app = sqlite_app
    st = app.ctl("status")
    assert st.returncode == 0 and '"status":"ok"' in st.stdout
    pid = int(Path(app.env["PFA_PIDFILE"]).read_text())
    r = app.ctl("stop")
    assert r.returncode == 0, r.stderr
    assert _gone(pid)
    assert not Path(app.env["PFA_PIDFILE"]).exists()
    assert sqlite_holders(app.db) == []
    assert app.ctl("status").returncode == 3
    assert app.ctl("stop").returncode == 0          # stopping twice is fine
    r = app.ctl("start")
    assert r.returncode == 0 and app.ctl("start").stdout.startswith("pfa-app: already running")


def test_start_fails_when_database_missing(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text('DATABASE_URL="file:./missing.db"\n')
    app = AppProc(tmp_path, env_file)
    r = app.ctl("start", PFA_START_TIMEOUT="2")
    assert r.returncode == 1
    assert "did not answer 200" in r.stderr
    assert not (tmp_path / "missing.db").exists()   # never creates an empty database
    assert app.ctl("status").returncode == 3         # and did not leave a process behind


# -- the app on PostgreSQL ---------------------------------------------------------------

@pytest.mark.pg
def test_postgres_url_with_encoded_password_and_schema(tmp_path, pg_db):
    """Percent-decoded credentials and ``schema`` -> search_path, against real PG."""
    import psycopg2

    secret = "p@ss:w/rd%?"
    conn = psycopg2.connect(pg_db)
    conn.autocommit = True
    admin = sample.hash_password("admin123", b"0123456789abcdef")
    with conn.cursor() as cur:
        cur.execute("DROP ROLE IF EXISTS pfa_app_t")
        cur.execute("CREATE ROLE pfa_app_t LOGIN PASSWORD %s", (secret,))
        cur.execute('CREATE SCHEMA tenant AUTHORIZATION pfa_app_t')
        cur.execute('CREATE TABLE tenant.users ("id" text PRIMARY KEY, "username" text, '
                    '"passwordHash" text, "role" text, "isActive" boolean, '
                    '"createdAt" timestamp(3))')
        cur.execute("INSERT INTO tenant.users VALUES ('u1','admin',%s,'admin',true,"
                    "'2025-11-19 08:50:31.903')", (admin,))
        cur.execute("GRANT ALL ON ALL TABLES IN SCHEMA tenant TO pfa_app_t")
    params = dict(x.split("=", 1) for x in pg_db.split())
    conn.close()
    from urllib.parse import quote
    url = (f"postgresql://pfa_app_t:{quote(secret, safe='')}@{params['host']}:{params['port']}/"
           f"{params['dbname']}?schema=tenant&connection_limit=5&pool_timeout=10")
    env_file = tmp_path / ".env"
    env_file.write_text(f'DATABASE_URL="{url}"\n')
    app = AppProc(tmp_path, env_file)
    try:
        r = app.ctl("start")
        assert r.returncode == 0, r.stderr
        assert app.request("GET", "/health") == (200, {"status": "ok", "database": "postgresql",
                                                      "users": 1})
        app.login()
        status, users = app.request("GET", "/api/users")
        assert status == 200
        assert users == [{"id": "u1", "username": "admin", "role": "admin", "isActive": True,
                          "createdAt": "2025-11-19T08:50:31.903Z"}]
    finally:
        app.ctl("stop")
        c = psycopg2.connect(pg_db)
        c.autocommit = True
        with c.cursor() as cur:
            cur.execute("DROP SCHEMA tenant CASCADE")
            cur.execute("DROP ROLE pfa_app_t")
        c.close()
    assert secret not in Path(app.env["PFA_LOG"]).read_text()


HAS_IMPORTER = all(importlib.util.find_spec(m) for m in ("pgcutover.export", "pgcutover.importer"))


@pytest.mark.pg
@pytest.mark.skipif(not HAS_IMPORTER, reason="pgcutover.export/importer not there yet")
def test_same_answers_from_sqlite_and_postgresql(tmp_path, pg_db):
    """Export + import, then every read endpoint answers the same from both backends."""
    from pgcutover.export import export
    from pgcutover.importer import import_export

    env_file, db = make_app_dir(tmp_path / "app", pfa_records=300)
    export(db, tmp_path / "export")
    import_export(tmp_path / "export", pg_db)
    params = dict(x.split("=", 1) for x in pg_db.split())
    password = Path(params["passfile"]).read_text().strip().split(":", 4)[4]
    from urllib.parse import quote
    pg_env = tmp_path / "pg.env"
    pg_env.write_text(f'DATABASE_URL="postgresql://{params["user"]}:{quote(password, safe="")}@'
                      f'{params["host"]}:{params["port"]}/{params["dbname"]}?schema=public"\n')
    os.chmod(pg_env, 0o600)
    (tmp_path / "s").mkdir()
    (tmp_path / "p").mkdir()
    apps = [AppProc(tmp_path / "s", env_file), AppProc(tmp_path / "p", pg_env)]
    try:
        for a in apps:
            r = a.ctl("start")
            assert r.returncode == 0, r.stderr
            a.login()
        s, p = apps
        org_id = s.request("GET", "/api/organizations")[1][0]["id"]
        for path in ("/api/organizations", "/api/users", f"/api/organizations/{org_id}",
                     f"/api/pfa-records?organizationId={org_id}&limit=50",
                     "/api/pfa-records?limit=1000"):
            assert s.request("GET", path) == p.request("GET", path), path
        assert s.request("GET", "/health")[1]["users"] == p.request("GET", "/health")[1]["users"]
    finally:
        for a in apps:
            a.ctl("stop")
