"""HTTP API (ThreadingHTTPServer) over the PFA database.

GET  /health                          200 {"status":"ok","database":..,"users":n} / 503
POST /api/auth/login                  {"username","password"} -> 200 {"token",..} / 401
GET  /api/organizations               bearer token required for every /api/* but login
GET  /api/organizations/<id>          404 when missing
GET  /api/users                       never returns password hashes
GET  /api/pfa-records?organizationId=..&limit=..
POST /api/sync-logs                   {"organizationId","syncType","status",...} -> 201
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import threading
import traceback
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from .auth import Tokens, verify_password
from .config import ConfigError, load_config
from .db import backend_for, parse_text_ts

MAX_BODY = 64 * 1024
MAX_LIMIT = 1000
SYNC_LOG_REQUIRED = ("organizationId", "syncType", "status")
SYNC_LOG_OPTIONAL = {"recordsProcessed": int, "recordsFailed": int, "completedAt": str,
                     "startedAt": str, "errorDetails": object}


class HttpError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class App:
    def __init__(self, backend, tokens: Tokens):
        self.db = backend
        self.tokens = tokens

    # -- endpoints -------------------------------------------------------------------
    def health(self, _q):
        try:
            n = self.db.rows("users", 'SELECT count(*) AS "n" FROM "users"')[0]["n"]
        except Exception as exc:  # noqa: BLE001 - any database failure means unhealthy
            sys.stderr.write(f"health: database error: {type(exc).__name__}: {exc}\n")
            return 503, {"status": "error", "database": self.db.name,
                         "error": type(exc).__name__}
        return 200, {"status": "ok", "database": self.db.name, "users": n}

    def login(self, body):
        username, password = body.get("username"), body.get("password")
        if not isinstance(username, str) or not isinstance(password, str):
            raise HttpError(400, "username and password are required")
        rows = self.db.rows("users", 'SELECT "id", "username", "passwordHash", "role", '
                            '"isActive" FROM "users" WHERE "username" = %s', (username,))
        user = rows[0] if rows else None
        if not user or not user["isActive"] or not verify_password(password, user["passwordHash"]):
            raise HttpError(401, "invalid username or password")
        return 200, {"token": self.tokens.issue(user["id"], user["username"], user["role"]),
                     "user": {"id": user["id"], "username": user["username"],
                              "role": user["role"]}}

    def organizations(self, _q):
        order = self.db.order_by("organizations", "id")
        return 200, self.db.rows("organizations", f'SELECT * FROM "organizations" ORDER BY {order}')

    def organization(self, org_id):
        rows = self.db.rows("organizations", 'SELECT * FROM "organizations" WHERE "id" = %s',
                            (org_id,))
        if not rows:
            raise HttpError(404, "organization not found")
        return 200, rows[0]

    def users(self, _q):
        cols = [c for c in self.db.kinds("users") if "password" not in c.lower()]
        select = ", ".join(f'"{c}"' for c in cols)
        order = self.db.order_by("users", "id")
        return 200, self.db.rows("users", f'SELECT {select} FROM "users" ORDER BY {order}')

    def pfa_records(self, q):
        try:
            limit = int(q.get("limit", ["100"])[0])
        except ValueError:
            raise HttpError(400, "limit must be an integer") from None
        if not 1 <= limit <= MAX_LIMIT:
            raise HttpError(400, f"limit must be 1..{MAX_LIMIT}")
        where, params = "", []
        if "organizationId" in q:
            where, params = 'WHERE "organizationId" = %s', [q["organizationId"][0]]
        order = self.db.order_by("pfa_records", "id")
        return 200, self.db.rows("pfa_records", f'SELECT * FROM "pfa_records" {where} '
                                 f'ORDER BY {order} LIMIT %s', (*params, limit))

    def create_sync_log(self, body):
        row = {}
        for k in SYNC_LOG_REQUIRED:
            if not isinstance(body.get(k), str) or not body[k]:
                raise HttpError(400, f"{k} is required (string)")
            row[k] = body[k]
        for k, typ in SYNC_LOG_OPTIONAL.items():
            if k in body and body[k] is not None:
                if typ is not object and not isinstance(body[k], typ):
                    raise HttpError(400, f"{k} must be {typ.__name__}")
                row[k] = body[k]
        kinds = self.db.kinds("sync_logs")
        for k in ("startedAt", "completedAt"):
            if k in row:
                dt = parse_text_ts(row[k])
                if dt is None:
                    raise HttpError(400, f"{k} must be an ISO-8601 timestamp")
                row[k] = self.db.now_value(kinds[k], dt)
        # Prisma's @default(now()) is applied by the client, in its own storage format.
        row.setdefault("startedAt", self.db.now_value(kinds["startedAt"],
                                                      datetime.now(timezone.utc)))
        if "errorDetails" in row:
            row["errorDetails"] = self.db.json_param(row["errorDetails"])
        cols = list(row)
        sql = (f'INSERT INTO "sync_logs" ({", ".join(chr(34) + c + chr(34) for c in cols)}) '
               f'VALUES ({", ".join(["%s"] * len(cols))}) RETURNING *')
        return 201, self.db.rows("sync_logs", sql, [row[c] for c in cols])[0]


class Handler(BaseHTTPRequestHandler):
    server_version = "pfa-app/1.0"
    app: App = None  # set by make_server

    def _send(self, status: int, body):
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict:
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            raise HttpError(413, "request body too large")
        try:
            body = json.loads(self.rfile.read(n) or b"{}")
        except ValueError:
            raise HttpError(400, "body must be JSON") from None
        if not isinstance(body, dict):
            raise HttpError(400, "body must be a JSON object")
        return body

    def _require_token(self):
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not self.app.tokens.check(auth[7:].strip()):
            raise HttpError(401, "bearer token required")

    def _dispatch(self, method: str):
        url = urlsplit(self.path)
        path, q = url.path.rstrip("/") or "/", parse_qs(url.query)
        try:
            if method == "GET" and path == "/health":
                return self._send(*self.app.health(q))
            if method == "POST" and path == "/api/auth/login":
                return self._send(*self.app.login(self._body()))
            if not path.startswith("/api/"):
                raise HttpError(404, "not found")
            self._require_token()
            m = re.fullmatch(r"/api/organizations/([^/]+)", path)
            if method == "GET" and m:
                return self._send(*self.app.organization(unquote(m.group(1))))
            routes = {("GET", "/api/organizations"): self.app.organizations,
                      ("GET", "/api/users"): self.app.users,
                      ("GET", "/api/pfa-records"): self.app.pfa_records}
            if (method, path) in routes:
                return self._send(*routes[(method, path)](q))
            if method == "POST" and path == "/api/sync-logs":
                return self._send(*self.app.create_sync_log(self._body()))
            raise HttpError(404, "not found")
        except HttpError as exc:
            self._send(exc.status, {"error": str(exc)})
        except Exception:  # noqa: BLE001 - log server side, never leak details
            traceback.print_exc(file=sys.stderr)
            self._send(500, {"error": "internal error"})

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def log_message(self, fmt, *args):  # request line only; headers (tokens) never logged
        sys.stderr.write("%s [%s] %s\n" % (self.address_string(), self.log_date_time_string(),
                                           fmt % args))


def make_server(env_file, host: str, port: int) -> ThreadingHTTPServer:
    db, env = load_config(env_file)
    app = App(backend_for(db), Tokens(env.get("JWT_SECRET") or os.environ.get("JWT_SECRET")))
    handler = type("BoundHandler", (Handler,), {"app": app})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    server.database_kind = db.kind
    return server


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="pfa-app", description=__doc__.splitlines()[0])
    ap.add_argument("--env-file", default=os.environ.get("PFA_ENV_FILE"),
                    help="dotenv file with DATABASE_URL (default: $PFA_ENV_FILE)")
    ap.add_argument("--host", default=os.environ.get("PFA_HOST", "127.0.0.1"))
    ap.add_argument("--port", type=int, default=int(os.environ.get("PFA_PORT", "3001")))
    args = ap.parse_args(argv)
    if not args.env_file:
        ap.error("--env-file or PFA_ENV_FILE is required")
    try:
        server = make_server(args.env_file, args.host, args.port)
    except (ConfigError, OSError) as exc:
        sys.stderr.write(f"pfa-app: {exc}\n")
        return 2

    def stop(_sig, _frame):
        threading.Thread(target=server.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sys.stderr.write(f"pfa-app: listening on {args.host}:{args.port} "
                     f"({server.database_kind})\n")
    sys.stderr.flush()
    try:
        server.serve_forever()
    finally:
        server.server_close()
    sys.stderr.write("pfa-app: stopped\n")
    return 0
