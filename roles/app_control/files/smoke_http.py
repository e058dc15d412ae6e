#!/usr/bin/env python3
"""Smoke tests of one app server in one process (the runbook's downtime is short, so one
task per server instead of one per request). Reads the spec as JSON from $SMOKE_SPEC:

  {"base_url": "http://127.0.0.1:3001", "timeout": 30,
   "health": {"path": "/health", "key": "database", "expect": "postgresql"},
   "login": {"path": "/api/auth/login", "username": "admin", "password": "...",
             "token_key": "token", "status": 200},             # optional
   "tests": [{"name": "...", "path": "...", "method": "GET", "status": 200,
              "auth": true, "body": {...}}]}

Waits up to `timeout` seconds for the health endpoint to answer 200, then checks the
database it names, logs in, and calls every test. Prints a JSON report (statuses and
timings, never bodies or the token); exit 1 when anything differs from expected.
"""
import json
import os
import sys
import time
import urllib.error
import urllib.request


def call(base, path, method="GET", body=None, token=None, timeout=10):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def main():
    spec = json.loads(os.environ["SMOKE_SPEC"])
    base, report, ok = spec["base_url"].rstrip("/"), {"checks": []}, True
    health = spec.get("health") or {"path": "/health"}
    t0 = time.monotonic()
    deadline = t0 + float(spec.get("timeout", 30))
    status, body = None, b""
    while True:
        try:
            status, body = call(base, health["path"], timeout=2)
        except OSError as exc:
            status, body = None, str(exc).encode()
        if status == 200 or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    entry = {"name": "health", "path": health["path"], "status": status,
             "waited_s": round(time.monotonic() - t0, 3)}
    if status != 200:
        entry["error"] = "no 200 within %ss" % spec.get("timeout", 30)
        ok = False
    elif health.get("expect"):
        try:
            got = json.loads(body).get(health.get("key", "database"))
        except ValueError:
            got = None
        entry["database"] = got
        if got != health["expect"]:
            entry["error"] = "health names database %r, expected %r" % (got, health["expect"])
            ok = False
    report["checks"].append(entry)

    token = None
    login = spec.get("login")
    if ok and login:
        status, body = call(base, login["path"], "POST",
                            {"username": login["username"], "password": login["password"]})
        entry = {"name": "login", "path": login["path"], "status": status}
        if status != login.get("status", 200):
            entry["error"] = "expected %s" % login.get("status", 200)
            ok = False
        else:
            try:
                token = json.loads(body).get(login.get("token_key", "token"))
            except ValueError:
                token = None
            if not token:
                entry["error"] = "no %s in the login answer" % login.get("token_key", "token")
                ok = False
        report["checks"].append(entry)

    for t in spec.get("tests", []) if ok else []:
        t1 = time.monotonic()
        status, _ = call(base, t["path"], t.get("method", "GET"), t.get("body"),
                         token if t.get("auth") else None)
        entry = {"name": t.get("name", t["path"]), "path": t["path"], "status": status,
                 "expected": t.get("status", 200), "ms": round((time.monotonic() - t1) * 1000, 1)}
        if status != t.get("status", 200):
            entry["error"] = "expected %s, got %s" % (t.get("status", 200), status)
            ok = False
        report["checks"].append(entry)
    report["ok"] = ok
    print(json.dumps(report))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
