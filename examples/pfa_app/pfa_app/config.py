"""The app's configuration: a dotenv file holding a Prisma-style ``DATABASE_URL``.

The runbook switches the database by rewriting that one line, exactly as the seed's
procedure does for the Node app, so the sample reads it the way Prisma would:

* ``file:./dev.db`` (SQLite): relative to the Prisma schema directory (``prisma/``
  next to the env file when ``prisma/schema.prisma`` exists there), else to the env
  file's directory; absolute paths as given; a ``?...`` suffix is ignored.
* ``postgresql://user:pass@host:port/db?schema=public&connection_limit=5``: user and
  password percent-decoded, ``schema`` becomes the search_path, Prisma-only
  parameters (``connection_limit``, ``pool_timeout``, ``pgbouncer``, ...) ignored,
  libpq ones (``sslmode``, ``connect_timeout``, ``host`` for a socket dir, ...) kept.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

LIBPQ_PARAMS = {"sslmode", "sslcert", "sslkey", "sslrootcert", "sslcrl", "connect_timeout",
                "host", "port", "application_name", "target_session_attrs", "passfile"}
_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")


class ConfigError(Exception):
    pass


def load_env_file(path) -> dict:
    """Parse a dotenv file: KEY=value, optional ``export``, quotes, ``#`` comments."""
    out = {}
    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        m = _LINE.match(raw)
        if not m:
            continue
        key, value = m.groups()
        if value[:1] in ("'", '"'):
            q = value[0]
            end = value.find(q, 1)
            while q == '"' and end > 0 and value[end - 1] == "\\":
                end = value.find(q, end + 1)
            body = value[1:end] if end > 0 else value[1:]
            if q == '"':
                body = body.replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")
            value = body
        else:
            value = re.sub(r"\s+#.*$", "", value)
        out[key] = value
    return out


@dataclass
class Database:
    kind: str                      # "sqlite" or "postgresql"
    sqlite_path: Path | None = None
    connect_kwargs: dict = field(default_factory=dict, repr=False)  # holds the password
    schema: str | None = None


def parse_database_url(url: str, env_dir: Path) -> Database:
    if url.startswith("file:"):
        raw = url[len("file:"):].split("?", 1)[0]
        p = Path(raw)
        if not p.is_absolute():
            prisma_dir = env_dir / "prisma"
            base = prisma_dir if (prisma_dir / "schema.prisma").exists() else env_dir
            p = base / p
        return Database("sqlite", sqlite_path=Path(os.path.normpath(p)))
    u = urlsplit(url)
    if u.scheme not in ("postgresql", "postgres"):
        raise ConfigError("DATABASE_URL must start with file: or postgresql://")
    kw = {}
    if u.hostname:
        kw["host"] = u.hostname
    if u.port:
        kw["port"] = u.port
    if u.username:
        kw["user"] = unquote(u.username)
    if u.password is not None:
        kw["password"] = unquote(u.password)
    if u.path.strip("/"):
        kw["dbname"] = unquote(u.path.lstrip("/"))
    schema = None
    for key, value in parse_qsl(u.query, keep_blank_values=True):
        if key == "schema":
            schema = value
        elif key in LIBPQ_PARAMS and not (key == "host" and "host" in kw):
            kw[key] = value
    kw.setdefault("connect_timeout", "5")
    return Database("postgresql", connect_kwargs=kw, schema=schema or "public")


def load_config(env_file) -> tuple[Database, dict]:
    env_file = Path(env_file).resolve()
    env = load_env_file(env_file)
    url = env.get("DATABASE_URL") or os.environ.get("DATABASE_URL")
    if not url:
        raise ConfigError(f"DATABASE_URL is not set in {env_file}")
    return parse_database_url(url, env_file.parent), env
