"""Provisioning roles driven through ansible-playbook, against real PostgreSQL 15 clusters.

One playbook run converges two clusters at once (forks=2): a dedicated Debian cluster
(system mode: pg_createcluster on its own port beside `main`, pg_ctlcluster, no systemd)
and an unprivileged throwaway cluster (initdb + pg_ctl as `postgres` through runuser).
Then: a second run and a check-mode run must change nothing, roles and pg_hba are probed
with real connections, DATABASE_URL is parsed and used. Docker: argument specs and the
rendered container spec (no Docker engine here). Cloud: the AWS path against moto_server.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import psycopg2
import pytest

pytestmark = pytest.mark.ansible

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
PG_BIN = Path("/usr/lib/postgresql/15/bin")
APP_PASSWORD = "p@ss:w/rd#?%&= é"          # every URL-special character + non-ASCII
MIGRATION_PASSWORD = "Mig/ra:tion@1?#"
RECAP = re.compile(r"^(\S+)\s*: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_playbook(playbook, inventory, *args, env=None, check=True):
    cmd = [str(VENV_BIN / "ansible-playbook"), "-i", str(inventory), str(playbook), *args]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "ANSIBLE_FORCE_COLOR": "0", **(env or {})})
    if check and proc.returncode != 0:
        pytest.fail(f"ansible-playbook failed ({proc.returncode}):\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}")
    return proc


def recap(stdout: str) -> dict[str, dict[str, int]]:
    return {m[0]: {"ok": int(m[1]), "changed": int(m[2]), "unreachable": int(m[3]), "failed": int(m[4])}
            for m in RECAP.findall(stdout)}


def write_yaml(path: Path, data) -> Path:
    path.write_text(json.dumps(data, indent=1))      # JSON is YAML
    return path


# --- local role: both modes converged once for the module -----------------------------
# The local fixture runs ansible-playbook on two clusters (about 1 min on an idle 2-core
# machine, several under load): tests using it are marked slow.
@pytest.fixture(scope="module")
def local_clusters():
    if os.geteuid() != 0 or not shutil.which("pg_createcluster"):
        pytest.skip("needs root and Debian's postgresql-common")
    work = Path(tempfile.mkdtemp(prefix="pgcutover-roles-", dir="/tmp"))
    os.chmod(work, 0o711)          # the unprivileged cluster's owner (postgres) traverses it
    name = "pgct_" + uuid.uuid4().hex[:8]
    sys_port, unpriv_port = free_port(), free_port()
    # TLS on the system cluster: a self-signed certificate the server (postgres) can read
    tls = work / "tls"
    tls.mkdir()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    "/CN=127.0.0.1", "-keyout", str(tls / "server.key"), "-out", str(tls / "server.crt")],
                   check=True, capture_output=True)
    for f in (tls, *tls.iterdir()):
        shutil.chown(f, "postgres", "postgres")
        os.chmod(f, 0o700 if f.is_dir() else 0o600)
    common = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
              "pgcutover_pg_provider": "local",
              "vault_pgcutover_app_password": APP_PASSWORD,
              "vault_pgcutover_migration_password": MIGRATION_PASSWORD}
    inventory = write_yaml(work / "hosts.yml", {"all": {"vars": common, "children": {
        "db_servers": {"hosts": {
            "pg_unpriv": {"postgresql_local_mode": "unprivileged", "postgresql_local_cluster_name": "t",
                          "postgresql_local_port": unpriv_port, "postgresql_local_memory_mb": 1024,
                          "postgresql_local_base_dir": str(work / "pg")},
            "pg_system": {"postgresql_local_mode": "system", "postgresql_local_cluster_name": name,
                          "postgresql_local_port": sys_port, "postgresql_local_tls_enabled": True,
                          "postgresql_local_tls_cert_file": str(tls / "server.crt"),
                          "postgresql_local_tls_key_file": str(tls / "server.key")},
        }},
        "app_servers": {"hosts": {"app": {"postgresql_connection_environment": "staging",
                                          "postgresql_connection_env_file": str(work / "database.env")}}},
    }}})
    try:                           # clean up even when the first run fails half-way
        t0 = time.monotonic()
        first = run_playbook("playbooks/provision.yml", inventory, "--forks", "3")
        info = {"work": work, "inventory": inventory, "name": name, "first": first,
                "seconds": time.monotonic() - t0,
                "ports": {"pg_system": sys_port, "pg_unpriv": unpriv_port}}
        yield info
    finally:
        subprocess.run(["pg_dropcluster", "--stop", "15", name], capture_output=True)
        subprocess.run(["runuser", "-u", "postgres", "--", str(PG_BIN / "pg_ctl"), "-D",
                        str(work / "pg" / "data"), "-m", "immediate", "stop"], capture_output=True, cwd="/tmp")
        shutil.rmtree(work, ignore_errors=True)


def connect(port, user, password, dbname="pfa_vanguard", sslmode="prefer"):
    return psycopg2.connect(host="127.0.0.1", port=port, user=user, password=password, dbname=dbname,
                            connect_timeout=5, sslmode=sslmode)


@pytest.mark.slow
def test_first_run_creates_dedicated_tuned_clusters(local_clusters):
    out = recap(local_clusters["first"].stdout)
    assert out["pg_system"]["changed"] > 0 and out["pg_unpriv"]["changed"] > 0
    # a dedicated Debian cluster on its own port, beside whatever else exists
    ls = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True).stdout
    line = next(ln.split() for ln in ls.splitlines() if ln.split()[1] == local_clusters["name"])
    assert line[2] == str(local_clusters["ports"]["pg_system"]) and line[3] == "online"
    memtotal_mb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())[1]) // 1024
    expected = {"pg_system": int(memtotal_mb * 0.25), "pg_unpriv": 256}      # 25% of the RAM tuned for
    for host, port in local_clusters["ports"].items():
        with connect(port, "pgcutover_migrator", MIGRATION_PASSWORD) as conn, conn.cursor() as cur:
            cur.execute("SELECT current_setting('data_checksums'), current_setting('password_encryption'),"
                        " pg_size_bytes(current_setting('shared_buffers')) / 1048576,"
                        " current_setting('max_wal_size'), current_setting('wal_compression')")
            checksums, enc, shared_mb, max_wal, walc = cur.fetchone()
        assert (checksums, enc, max_wal, walc) == ("on", "scram-sha-256", "4GB", "lz4"), host
        assert shared_mb == expected[host], host


@pytest.mark.slow
def test_second_run_and_check_mode_change_nothing(local_clusters):
    inv = local_clusters["inventory"]
    again = recap(run_playbook("playbooks/provision.yml", inv, "--forks", "3").stdout)
    check = recap(run_playbook("playbooks/provision.yml", inv, "--forks", "3", "--check").stdout)
    for out in (again, check):
        assert set(out) == {"pg_system", "pg_unpriv", "app"}
        assert all(v["changed"] == 0 and v["failed"] == 0 for v in out.values()), out


@pytest.mark.slow
@pytest.mark.parametrize("host", ["pg_system", "pg_unpriv"])
def test_roles_privileges(local_clusters, host):
    port = local_clusters["ports"][host]
    table = "t_" + uuid.uuid4().hex[:8]
    with connect(port, "pgcutover_migrator", MIGRATION_PASSWORD) as conn, conn.cursor() as cur:
        cur.execute(f'CREATE TABLE "{table}" (id serial PRIMARY KEY, v text)')
        cur.execute("SELECT rolname, rolsuper, rolcreatedb, rolcreaterole FROM pg_roles"
                    " WHERE rolname IN ('pgcutover_migrator', 'pfa_app') ORDER BY 1")
        assert cur.fetchall() == [("pfa_app", False, False, False), ("pgcutover_migrator", False, False, False)]
    app = connect(port, "pfa_app", APP_PASSWORD)
    try:
        with app.cursor() as cur:          # default privileges reach the migration role's new table
            cur.execute(f'INSERT INTO "{table}" (v) VALUES (%s) RETURNING id', ("x",))
            cur.execute(f'SELECT count(*) FROM "{table}"')
            assert cur.fetchone() == (1,)
        app.commit()
        for ddl in ("CREATE TABLE app_made (id int)", f'DROP TABLE "{table}"', "CREATE SCHEMA app_schema",
                    "CREATE TEMP TABLE tmp_t (id int)"):
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                with app.cursor() as cur:
                    cur.execute(ddl)
            app.rollback()
    finally:
        app.close()


@pytest.mark.slow
@pytest.mark.parametrize("host", ["pg_system", "pg_unpriv"])
def test_pg_hba_refuses(local_clusters, host):
    port = local_clusters["ports"][host]
    attempts = [("pfa_app", APP_PASSWORD, "postgres"),               # another database
                ("pfa_app", APP_PASSWORD, "template1"),
                ("postgres", "anything", "pfa_vanguard"),             # superuser over TCP
                ("nobody", "anything", "pfa_vanguard"),               # unlisted role
                ("pfa_app", "wrong", "pfa_vanguard")]                 # scram-sha-256, not trust
    for user, password, db in attempts:
        with pytest.raises(psycopg2.OperationalError) as err:
            connect(port, user, password, db).close()
        expected = "password authentication failed" if password == "wrong" else "no pg_hba.conf entry"
        assert expected in str(err.value), (user, db, str(err.value))
    if host == "pg_system":          # TLS on: hostssl only, a clear-text connection is refused
        with pytest.raises(psycopg2.OperationalError, match="no encryption"):
            connect(port, "pfa_app", APP_PASSWORD, sslmode="disable").close()
        with connect(port, "pfa_app", APP_PASSWORD, sslmode="require") as conn, conn.cursor() as cur:
            cur.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            assert cur.fetchone() == (True,)
    hba = (Path(f"/etc/postgresql/15/{local_clusters['name']}") if host == "pg_system"
           else local_clusters["work"] / "pg" / "data") / "pg_hba.conf"
    rules = [ln.split() for ln in hba.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    assert not any("trust" in r for r in rules)
    assert all(r[-1] == "scram-sha-256" for r in rules if r[0].startswith("host"))
    assert {r[0] for r in rules if r[0].startswith("host")} == {"hostssl" if host == "pg_system" else "host"}


@pytest.mark.slow
def test_database_url_encodes_and_connects(local_clusters):
    env_file = local_clusters["work"] / "database.env"
    assert env_file.stat().st_mode & 0o777 == 0o600
    urls = dict(re.findall(r'^(\w+)="(.*)"$', env_file.read_text(), re.M))
    url = urls["DATABASE_URL"]
    parts = urlsplit(url)
    assert "/" not in parts.netloc and " " not in url and "é" not in url
    assert (unquote(parts.username), unquote(parts.password)) == ("pfa_app", APP_PASSWORD)
    assert (parts.hostname, parts.port, parts.path) == ("127.0.0.1", local_clusters["ports"]["pg_unpriv"],
                                                        "/pfa_vanguard")
    q = parse_qs(parts.query)
    assert {k: v[0] for k, v in q.items()} == {"schema": "public", "connection_limit": "10",
                                               "pool_timeout": "20", "sslmode": "disable"}   # staging
    # libpq decodes the same percent-encoding: the URL (minus Prisma's own parameters) logs in
    for key, user in (("DATABASE_URL", "pfa_app"), ("MIGRATION_DATABASE_URL", "pgcutover_migrator")):
        libpq_url = urls[key].split("?")[0] + "?sslmode=disable"
        with psycopg2.connect(libpq_url) as conn, conn.cursor() as cur:
            cur.execute("SELECT current_user")
            assert cur.fetchone() == (user,)


def test_connection_pools_per_environment(tmp_path):
    """The connection role alone, from a hand-written connection fact: prod pool 30/30."""
    play = write_yaml(tmp_path / "play.yml", [{
        "hosts": "localhost", "gather_facts": False,
        "tasks": [{"ansible.builtin.include_role": {"name": "postgresql_connection"}}]}])
    inv = write_yaml(tmp_path / "inv.yml", {"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
        "vault_pgcutover_app_password": APP_PASSWORD, "vault_pgcutover_migration_password": "m",
        "postgresql_connection_environment": "production",
        "postgresql_connection_env_file": str(tmp_path / "db.env"),
        "pgcutover_pg_connection": {"provider": "cloud", "host": "db.example.com", "port": 5432,
                                    "database": "pfa/vanguard", "schema": "public", "sslmode": "verify-full",
                                    "migration_user": "mig", "app_user": "app@corp"}}}}})
    proc = run_playbook(play, inv)
    assert APP_PASSWORD not in proc.stdout
    url = re.search(r'^DATABASE_URL="(.*)"$', (tmp_path / "db.env").read_text(), re.M)[1]
    assert url == ("postgresql://app%40corp:p%40ss%3Aw%2Frd%23%3F%25%26%3D%20%C3%A9@db.example.com:5432/"
                   "pfa%2Fvanguard?schema=public&connection_limit=30&pool_timeout=30"
                   "&sslmode=require&sslaccept=strict")


# --- docker role: no Docker engine here, so argument specs and the rendered spec ---------
def _docker_play(tmp_path, tasks, **hostvars):
    play = write_yaml(tmp_path / "docker.yml", [{"hosts": "localhost", "gather_facts": False, "tasks": tasks}])
    inv = write_yaml(tmp_path / "docker_inv.yml", {"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable, **hostvars}}}})
    return play, inv


def test_docker_argument_spec_requires_vault_secrets(tmp_path):
    play, inv = _docker_play(tmp_path, [{"ansible.builtin.include_role": {"name": "postgresql_docker"}}],
                             postgresql_docker_memory_mb=2048, postgresql_docker_cpus=2)
    proc = run_playbook(play, inv, check=False)
    assert proc.returncode != 0
    assert "missing required arguments" in proc.stdout
    for secret in ("vault_pgcutover_superuser_password", "vault_pgcutover_app_password",
                   "vault_pgcutover_migration_password"):
        assert secret in proc.stdout


def test_docker_refuses_unpinned_image(tmp_path):
    play, inv = _docker_play(tmp_path, [{"ansible.builtin.include_role": {
        "name": "postgresql_docker", "tasks_from": "spec"}}],
        postgresql_docker_image="postgres:latest", postgresql_docker_memory_mb=2048, postgresql_docker_cpus=2)
    proc = run_playbook(play, inv, check=False)
    assert proc.returncode != 0 and "must be pinned" in proc.stdout


def test_docker_spec_renders_tuning_healthcheck_and_hba(tmp_path):
    out, conf = tmp_path / "spec.json", tmp_path / "conf"
    play, inv = _docker_play(tmp_path, [
        {"ansible.builtin.include_role": {"name": "postgresql_docker", "tasks_from": "spec"}},
        {"ansible.builtin.include_role": {"name": "postgresql_docker", "tasks_from": "files"}},
        {"ansible.builtin.copy": {"content": "{{ __postgresql_docker_spec | to_nice_json }}", "dest": str(out),
                                  "mode": "0600"}}],
        postgresql_docker_memory_mb=4096, postgresql_docker_cpus=4, postgresql_docker_config_dir=str(conf),
        vault_pgcutover_superuser_password="s3cret-Super")
    first = run_playbook(play, inv, "--diff")
    assert "s3cret-Super" not in first.stdout
    spec = json.loads(out.read_text())
    assert spec["image"] == "postgres:15.10-bookworm"
    cmd = spec["command"]
    assert cmd[0] == "postgres" and cmd[1::2] == ["-c"] * ((len(cmd) - 1) // 2)
    settings = dict(arg.split("=", 1) for arg in cmd[2::2])
    # the same tuning as postgresql_local, from the container's 4 GB / 4 cores
    assert settings["shared_buffers"] == "1024MB" and settings["effective_cache_size"] == "3072MB"
    assert settings["maintenance_work_mem"] == "256MB" and settings["max_parallel_workers"] == "4"
    assert settings["password_encryption"] == "scram-sha-256"
    assert settings["hba_file"] == "/etc/pgcutover/pg_hba.conf" and settings["listen_addresses"] == "*"
    assert spec["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    assert spec["env"]["POSTGRES_PASSWORD_FILE"] and "POSTGRES_PASSWORD" not in spec["env"]
    assert "--data-checksums" in spec["env"]["POSTGRES_INITDB_ARGS"]
    assert spec["published_ports"] == ["127.0.0.1:5432:5432"]
    assert {m["type"] for m in spec["mounts"]} == {"volume", "bind"}
    # the pg_hba file the container mounts: written by postgresql_pg_hba, no trust, scram on TCP
    rules = [ln.split() for ln in (conf / "pg_hba.conf").read_text().splitlines() if ln and not ln.startswith("#")]
    assert rules and not any("trust" in r for r in rules)
    assert all(r[-1] == "scram-sha-256" for r in rules if r[0] == "host")
    assert {r[1] for r in rules if r[0] == "host" and r[2] != "postgres"} == {"pfa_vanguard"}
    pw = conf / "superuser_password"
    assert pw.read_text() == "s3cret-Super" and pw.stat().st_mode & 0o777 == 0o400
    again = recap(run_playbook(play, inv).stdout)
    assert again["localhost"]["changed"] == 0


# --- cloud role, AWS path, against moto_server ---------------------------------------------
@pytest.fixture
def moto(tmp_path):
    server = VENV_BIN / "moto_server"
    if not server.exists():
        pytest.skip("moto_server not installed")
    port = free_port()
    proc = subprocess.Popen([str(server), "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.2)
    creds = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    try:
        yield url, creds
    finally:
        proc.terminate()
        proc.wait(10)


def test_rds_against_moto(tmp_path, moto):
    import boto3
    url, creds = moto
    aws = dict(endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    ec2, rds = boto3.client("ec2", **aws), boto3.client("rds", **aws)
    # the network an RDS instance lives in (exists before provisioning, as in any real account)
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.9.{i}.0/24", AvailabilityZone=f"us-east-1{z}")
               ["Subnet"]["SubnetId"] for i, z in ((1, "a"), (2, "b"))]
    sg = ec2.create_security_group(GroupName="pg", Description="pg", VpcId=vpc)["GroupId"]
    rds.create_db_subnet_group(DBSubnetGroupName="pfa-private", DBSubnetGroupDescription="d", SubnetIds=subnets)
    # moto has no RDS parameter catalog (describe_db_parameters of a new group is empty), so the
    # group is created here and the role only attaches it; its content is checked as rendered.
    rds.create_db_parameter_group(DBParameterGroupName="pfa-pg15", DBParameterGroupFamily="postgres15",
                                  Description="pgcutover")
    out = tmp_path / "out.json"
    play = write_yaml(tmp_path / "rds.yml", [{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"ansible.builtin.include_role": {"name": "postgresql_cloud", "public": True}},
        {"ansible.builtin.copy": {"dest": str(out), "mode": "0600", "content":
            "{{ {'connection': pgcutover_pg_connection, 'params': __postgresql_cloud_aws_params} | to_json }}"}}]}])
    inv = write_yaml(tmp_path / "inv.yml", {"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
        "postgresql_cloud_platform": "aws", "postgresql_cloud_aws_endpoint_url": url,
        "postgresql_cloud_aws_region": "us-east-1", "postgresql_cloud_instance_name": "pfa-test",
        "postgresql_cloud_engine_version": "15.10", "postgresql_cloud_memory_mb": 8192, "postgresql_cloud_cpus": 2,
        "postgresql_cloud_aws_manage_param_group": False, "postgresql_cloud_aws_param_group": "pfa-pg15",
        "postgresql_cloud_aws_subnet_group": "pfa-private", "postgresql_cloud_aws_security_group_ids": [sg],
        # moto omits StorageThroughput, which amazon.aws compares for gp3
        "postgresql_cloud_aws_storage_type": "gp2",
        "postgresql_cloud_manage_objects": False,       # moto's endpoint is not a PostgreSQL server
        "vault_pgcutover_superuser_password": "Sup3r-secret-pw", "vault_pgcutover_migration_password": "m",
        "vault_pgcutover_app_password": "a"}}}})
    first = run_playbook(play, inv, env=creds)
    assert "Sup3r-secret-pw" not in first.stdout
    result = json.loads(out.read_text())
    db = rds.describe_db_instances(DBInstanceIdentifier="pfa-test")["DBInstances"][0]
    assert (db["Engine"], db["EngineVersion"], db["StorageEncrypted"], db["BackupRetentionPeriod"]) == \
        ("postgres", "15.10", True, 7)
    assert (db["MultiAZ"], db["PubliclyAccessible"], db["DeletionProtection"]) == (True, False, True)
    assert [g["DBParameterGroupName"] for g in db["DBParameterGroups"]] == ["pfa-pg15"]
    conn = result["connection"]
    assert (conn["host"], conn["port"]) == (db["Endpoint"]["Address"], db["Endpoint"]["Port"])
    assert conn["provider"] == "cloud" and conn["sslmode"] == "require" and conn["database"] == "pfa_vanguard"
    params = result["params"]          # RDS units: 8 kB pages, kB, MB
    assert params["shared_buffers"] == str(8192 // 4 * 1024 // 8) and params["rds.force_ssl"] == "1"
    assert params["effective_cache_size"] == str(8192 * 3 // 4 * 1024 // 8)
    assert params["maintenance_work_mem"] == str(512 * 1024) and params["max_wal_size"] == "4096"
    assert params["password_encryption"] == "scram-sha-256"
    again = recap(run_playbook(play, inv, env=creds).stdout)
    assert again["localhost"]["changed"] == 0           # rds_instance idempotent against the same API
