"""Deterministic Prisma-style SQLite database shaped like the PFA Vanguard app.

The DDL is what ``prisma migrate`` emits for SQLite (quoted camelCase, ``DATETIME``,
``BOOLEAN``, ``DECIMAL``, ``JSONB``, named unique indexes, FKs with ON DELETE/UPDATE),
plus a few things real databases accumulate: a ``COLLATE NOCASE`` e-mail, two
``INTEGER PRIMARY KEY AUTOINCREMENT`` tables (so ``sqlite_sequence`` exists) and
DateTime columns where rows written by raw SQL hold TEXT ``YYYY-MM-DD HH:MM:SS``
next to Prisma's INTEGER milliseconds.  docs/SAMPLE_SCHEMA.md documents the result.

Baseline row counts are exactly the seed's (67 rows in 12 tables); ``pfa_records``
can be scaled to a million rows for benchmarks.
"""
from __future__ import annotations

import base64
import hashlib
import os
import random
import sqlite3
import time
from pathlib import Path

ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "admin123"  # the seed's documented test login, not a secret
PBKDF2_ITERATIONS = 100_000

# 2025-11-25 00:00:00 UTC, the seed's analysis date: every timestamp derives from it.
BASE_MS = 1764028800000

# Load order = the seed's import order (parents before children).
TABLE_ORDER = [
    "users", "organizations", "user_organizations", "ai_providers",
    "organization_ai_configs", "ai_usage_logs", "api_configurations",
    "organization_api_credentials", "data_source_mappings", "field_configurations",
    "pfa_records", "sync_logs",
]
BASELINE_COUNTS = {
    "users": 7, "organizations": 28, "user_organizations": 12, "ai_providers": 3,
    "organization_ai_configs": 2, "ai_usage_logs": 0, "api_configurations": 10,
    "organization_api_credentials": 0, "data_source_mappings": 4,
    "field_configurations": 1, "pfa_records": 0, "sync_logs": 0,
}

PRISMA_MIGRATIONS_DDL = '''CREATE TABLE "_prisma_migrations" (
    "id"                    TEXT PRIMARY KEY NOT NULL,
    "checksum"              TEXT NOT NULL,
    "finished_at"           DATETIME,
    "migration_name"        TEXT NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        DATETIME,
    "started_at"            DATETIME NOT NULL DEFAULT current_timestamp,
    "applied_steps_count"   INTEGER UNSIGNED NOT NULL DEFAULT 0
)'''

SCHEMA_SQL = r'''
-- CreateTable
CREATE TABLE "users" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "username" TEXT NOT NULL,
    "email" TEXT COLLATE NOCASE,
    "passwordHash" TEXT NOT NULL,
    "firstName" TEXT,
    "lastName" TEXT,
    "role" TEXT NOT NULL DEFAULT 'user',
    "isActive" BOOLEAN NOT NULL DEFAULT true,
    "lastLoginAt" DATETIME,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL
);

-- CreateTable
CREATE TABLE "organizations" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "code" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "description" TEXT,
    "isActive" BOOLEAN NOT NULL DEFAULT true,
    "settings" JSONB,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL
);

-- CreateTable
CREATE TABLE "user_organizations" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "userId" TEXT NOT NULL,
    "organizationId" TEXT NOT NULL,
    "role" TEXT NOT NULL DEFAULT 'member',
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "user_organizations_userId_fkey" FOREIGN KEY ("userId") REFERENCES "users" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "user_organizations_organizationId_fkey" FOREIGN KEY ("organizationId") REFERENCES "organizations" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "ai_providers" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "name" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "model" TEXT NOT NULL,
    "apiEndpoint" TEXT,
    "inputCostPer1k" DECIMAL NOT NULL DEFAULT 0,
    "outputCostPer1k" DECIMAL NOT NULL DEFAULT 0,
    "isEnabled" BOOLEAN NOT NULL DEFAULT true,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL
);

-- CreateTable
CREATE TABLE "organization_ai_configs" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "organizationId" TEXT NOT NULL,
    "primaryProvider" TEXT NOT NULL,
    "encryptedApiKey" TEXT,
    "monthlyBudgetUsd" DECIMAL,
    "settings" JSONB,
    "isEnabled" BOOLEAN NOT NULL DEFAULT false,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL,
    CONSTRAINT "organization_ai_configs_organizationId_fkey" FOREIGN KEY ("organizationId") REFERENCES "organizations" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "ai_usage_logs" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "userId" TEXT NOT NULL,
    "organizationId" TEXT NOT NULL,
    "provider" TEXT NOT NULL,
    "model" TEXT NOT NULL,
    "queryHash" TEXT,
    "promptTokens" INTEGER NOT NULL DEFAULT 0,
    "completionTokens" INTEGER NOT NULL DEFAULT 0,
    "costUsd" DECIMAL NOT NULL DEFAULT 0,
    "latencyMs" INTEGER,
    "success" BOOLEAN NOT NULL DEFAULT true,
    "errorMessage" TEXT,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "ai_usage_logs_userId_fkey" FOREIGN KEY ("userId") REFERENCES "users" ("id") ON DELETE RESTRICT ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "api_configurations" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "organizationId" TEXT,
    "name" TEXT NOT NULL,
    "provider" TEXT NOT NULL,
    "baseUrl" TEXT NOT NULL,
    "authType" TEXT NOT NULL DEFAULT 'apiKey',
    "encryptedCredentials" TEXT,
    "headers" TEXT,
    "status" TEXT NOT NULL DEFAULT 'untested',
    "isGlobal" BOOLEAN NOT NULL DEFAULT false,
    "lastTestedAt" DATETIME,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL,
    CONSTRAINT "api_configurations_organizationId_fkey" FOREIGN KEY ("organizationId") REFERENCES "organizations" ("id") ON DELETE SET NULL ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "organization_api_credentials" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "organizationId" TEXT NOT NULL,
    "apiConfigurationId" TEXT NOT NULL,
    "encryptedApiKey" TEXT NOT NULL,
    "encryptedSecret" TEXT,
    "isActive" BOOLEAN NOT NULL DEFAULT true,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL,
    CONSTRAINT "organization_api_credentials_organizationId_fkey" FOREIGN KEY ("organizationId") REFERENCES "organizations" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "organization_api_credentials_apiConfigurationId_fkey" FOREIGN KEY ("apiConfigurationId") REFERENCES "api_configurations" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "data_source_mappings" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "apiConfigurationId" TEXT NOT NULL,
    "entityType" TEXT NOT NULL,
    "priority" INTEGER NOT NULL DEFAULT 1,
    "isActive" BOOLEAN NOT NULL DEFAULT true,
    "fieldMap" JSONB NOT NULL,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL,
    CONSTRAINT "data_source_mappings_apiConfigurationId_fkey" FOREIGN KEY ("apiConfigurationId") REFERENCES "api_configurations" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "field_configurations" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "organizationId" TEXT,
    "name" TEXT NOT NULL,
    "fields" TEXT NOT NULL,
    "isDefault" BOOLEAN NOT NULL DEFAULT false,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL,
    CONSTRAINT "field_configurations_organizationId_fkey" FOREIGN KEY ("organizationId") REFERENCES "organizations" ("id") ON DELETE SET NULL ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "pfa_records" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "organizationId" TEXT NOT NULL,
    "pfaId" TEXT NOT NULL,
    "areaSilo" TEXT,
    "category" TEXT,
    "class" TEXT,
    "source" TEXT NOT NULL,
    "dor" TEXT,
    "isActualized" BOOLEAN NOT NULL DEFAULT false,
    "isDiscontinued" BOOLEAN NOT NULL DEFAULT false,
    "isFundsTransferable" BOOLEAN NOT NULL DEFAULT false,
    "monthlyRate" REAL,
    "purchasePrice" DECIMAL,
    "manufacturer" TEXT,
    "model" TEXT,
    "originalStart" DATETIME,
    "originalEnd" DATETIME,
    "forecastStart" DATETIME,
    "forecastEnd" DATETIME,
    "actualStart" DATETIME,
    "actualEnd" DATETIME,
    "syncState" TEXT NOT NULL DEFAULT 'pristine',
    "modifiedAt" DATETIME,
    "modifiedBy" TEXT,
    "syncVersion" INTEGER NOT NULL DEFAULT 0,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL,
    CONSTRAINT "pfa_records_organizationId_fkey" FOREIGN KEY ("organizationId") REFERENCES "organizations" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "sync_logs" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "organizationId" TEXT NOT NULL,
    "syncType" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "recordsProcessed" INTEGER NOT NULL DEFAULT 0,
    "recordsFailed" INTEGER NOT NULL DEFAULT 0,
    "startedAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "completedAt" DATETIME,
    "errorDetails" JSONB
);

-- CreateIndex
CREATE UNIQUE INDEX "users_username_key" ON "users"("username");
CREATE UNIQUE INDEX "users_email_key" ON "users"("email");
CREATE UNIQUE INDEX "organizations_code_key" ON "organizations"("code");
CREATE INDEX "user_organizations_organizationId_idx" ON "user_organizations"("organizationId");
CREATE UNIQUE INDEX "user_organizations_userId_organizationId_key" ON "user_organizations"("userId", "organizationId");
CREATE UNIQUE INDEX "ai_providers_name_key" ON "ai_providers"("name");
CREATE UNIQUE INDEX "organization_ai_configs_organizationId_key" ON "organization_ai_configs"("organizationId");
CREATE INDEX "ai_usage_logs_organizationId_createdAt_idx" ON "ai_usage_logs"("organizationId", "createdAt" DESC);
CREATE INDEX "ai_usage_logs_queryHash_createdAt_idx" ON "ai_usage_logs"("queryHash", "createdAt" DESC) WHERE "success" = 1;
CREATE INDEX "api_configurations_organizationId_idx" ON "api_configurations"("organizationId");
CREATE UNIQUE INDEX "organization_api_credentials_organizationId_apiConfigurationId_key" ON "organization_api_credentials"("organizationId", "apiConfigurationId");
CREATE INDEX "data_source_mappings_apiConfigurationId_idx" ON "data_source_mappings"("apiConfigurationId");
CREATE UNIQUE INDEX "pfa_records_organizationId_pfaId_key" ON "pfa_records"("organizationId", "pfaId");
CREATE INDEX "pfa_records_organizationId_areaSilo_category_idx" ON "pfa_records"("organizationId", "areaSilo", "category");
CREATE INDEX "pfa_records_organizationId_forecastStart_forecastEnd_idx" ON "pfa_records"("organizationId", "forecastStart", "forecastEnd");
CREATE INDEX "pfa_records_organizationId_syncState_modifiedAt_idx" ON "pfa_records"("organizationId", "syncState", "modifiedAt");
CREATE INDEX "sync_logs_organizationId_startedAt_idx" ON "sync_logs"("organizationId", "startedAt");
'''

MIGRATIONS = [
    ("20251101120000_init", 1),
    ("20251110093000_ai_usage_and_providers", 1),
    ("20251118150000_pfa_sync_state", 1),
    ("20251124080000_jsonb_settings", 1),
]


def hash_password(password: str, salt: bytes, iterations: int = PBKDF2_ITERATIONS) -> str:
    """``pbkdf2_sha256$<iterations>$<salt b64>$<hash b64>`` (standard base64, padded,
    32-byte key): node's ``crypto.pbkdf2Sync(pw, salt, it, 32, 'sha256')`` verifies it."""
    dk = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations, 32)
    return "pbkdf2_sha256$%d$%s$%s" % (iterations, base64.b64encode(salt).decode(),
                                       base64.b64encode(dk).decode())


def verify_password(password: str, encoded: str) -> bool:
    algo, iterations, salt, digest = encoded.split("$")
    if algo != "pbkdf2_sha256":
        return False
    dk = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), base64.b64decode(salt),
                             int(iterations), len(base64.b64decode(digest)))
    return base64.b64encode(dk).decode() == digest


class _Gen:
    """Seeded value factory: same seed, same database content."""

    def __init__(self, seed: int):
        self.rnd = random.Random(seed)
        self.counter = 0

    def cuid(self) -> str:
        # 25 chars like Prisma's cuid(): 'c' + base36 time-ish + counter + random.
        self.counter += 1
        alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
        body = "".join(self.rnd.choice(alphabet) for _ in range(20))
        return "c" + "%04x" % (self.counter % 65536) + body

    def ms(self, days_back: float = 30.0) -> int:
        return BASE_MS - int(self.rnd.random() * days_back * 86400000)

    def encrypted(self) -> str:
        # AES-GCM-like "iv:ciphertext" as the app stores API keys (base64 parts).
        iv = bytes(self.rnd.getrandbits(8) for _ in range(12))
        ct = bytes(self.rnd.getrandbits(8) for _ in range(48))
        return base64.b64encode(iv).decode() + ":" + base64.b64encode(ct).decode()


def _text_ts(ms: int) -> str:
    """What SQLite's CURRENT_TIMESTAMP writes (UTC, second precision)."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms // 1000))


def _baseline_rows(g: _Gen) -> dict[str, list[tuple]]:
    rows: dict[str, list[tuple]] = {}
    # users: the admin first; one user was created by a raw SQL seed (TEXT timestamp).
    people = [("admin", "System", "Administrator", "admin"),
              ("jdoe", "John", "Doe", "user"), ("asmith", "Alice", "Smith", "user"),
              ("bwong", "Brian", "Wong", "manager"), ("cgarcia", "Carla", "Garcia", "user"),
              ("dkim", "Daniel", "Kim", "viewer"), ("ebrown", "Emma", "Brown", "user")]
    users = []
    for i, (uname, first, last, role) in enumerate(people):
        salt = bytes(g.rnd.getrandbits(8) for _ in range(16))
        pw = ADMIN_PASSWORD if uname == ADMIN_USERNAME else "pw-%s-%d" % (uname, i)
        created = g.ms(60)
        created_cell = _text_ts(created) if uname == "dkim" else created
        email = None if uname == "ebrown" else "%s@%s.example.com" % (
            uname.capitalize() if i % 2 else uname, "PFA" if i == 3 else "pfa")
        users.append((g.cuid(), uname, email, hash_password(pw, salt), first, last, role,
                      0 if uname == "ebrown" else 1,
                      None if i > 4 else created + 86400000, created_cell, created + 3600000))
    rows["users"] = users

    orgs = []
    for i in range(28):
        created = g.ms(90)
        settings = None if i % 4 == 3 else (
            '{"timezone": "UTC", "currency": "USD", "features": {"ai": %s, "sync": true},'
            ' "budget": %d.0, "region": "r\\u00e9gion-%d"}' % ("true" if i % 2 else "false",
                                                                 1000 * (i + 1), i))
        orgs.append((g.cuid(), "ORG%03d" % (i + 1), "Organization %d" % (i + 1),
                     None if i % 3 else "Line one\nline two\twith tab, and \\backslash",
                     0 if i in (5, 17) else 1, settings,
                     _text_ts(created) if i in (26, 27) else created, created + 1000))
    rows["organizations"] = orgs

    user_orgs = []
    pairs = [(0, 0), (0, 1), (0, 2), (1, 0), (2, 0), (2, 1), (3, 1), (3, 2), (4, 3),
             (5, 4), (6, 5), (1, 6)]
    for n, (u, o) in enumerate(pairs):
        user_orgs.append((g.cuid(), users[u][0], orgs[o][0],
                          "owner" if u == 0 else ("admin" if n % 3 == 0 else "member"),
                          g.ms(30)))
    rows["user_organizations"] = user_orgs

    providers = [("openai", "openai", "gpt-4o", "https://api.openai.com/v1", 0.0025, 0.01),
                 ("anthropic", "anthropic", "claude-3-5-sonnet", "https://api.anthropic.com",
                  0.003, 0.015),
                 ("gemini", "google", "gemini-1.5-pro", None, 0.00125, 0.005)]
    rows["ai_providers"] = [(g.cuid(), n, t, m, ep, ic, oc, 1 if n != "gemini" else 0,
                             g.ms(60), BASE_MS - 86400000) for n, t, m, ep, ic, oc in providers]

    rows["organization_ai_configs"] = [
        (g.cuid(), orgs[0][0], "openai", g.encrypted(), 250.5,
         '{"temperature":0.2,"maxTokens":4096,"fallback":["anthropic","gemini"]}', 1,
         g.ms(20), g.ms(5)),
        (g.cuid(), orgs[1][0], "anthropic", None, 1e3, '{}', 0, g.ms(20), g.ms(5)),
    ]
    rows["ai_usage_logs"] = []

    apis = []
    names = ["PEMS Read", "PEMS Write", "PEMS Assets", "PEMS Classes", "ESS Budget",
             "Weather", "Procore Projects", "SAP Finance", "Custom REST", "Legacy FTP"]
    for i, name in enumerate(names):
        created = g.ms(45)
        apis.append((g.cuid(), None if i < 4 else orgs[i % 28][0], name,
                     "pems" if name.startswith("PEMS") else name.split()[0].lower(),
                     "https://api%d.example.com/v2/" % i, "basic" if i % 3 == 0 else "apiKey",
                     g.encrypted() if i != 9 else None,
                     '{"Accept": "application/json", "X-Tenant": "t%d"}' % i if i % 2 else None,
                     ["untested", "connected", "failed"][i % 3], 1 if i < 4 else 0,
                     created + 7200000 if i % 3 == 1 else None,
                     _text_ts(created) if i == 8 else created, created + 60000))
    rows["api_configurations"] = apis
    rows["organization_api_credentials"] = []

    rows["data_source_mappings"] = [
        (g.cuid(), apis[k][0], entity, prio, 1,
         '{"pfaId": "PFA_ID", "areaSilo": "AREA", "nested": {"a": [1, 2.50, 1e2, -0]},'
         ' "note": "quote \\" and \\\\ and \\u00fc"}', g.ms(10), g.ms(2))
        for k, entity, prio in [(0, "pfa", 1), (2, "asset", 2), (3, "class", 3), (4, "budget", 1)]]

    rows["field_configurations"] = [
        (g.cuid(), None, "Default grid",
         '[{"field":"pfaId","visible":true,"width":120},'
         '{"field":"monthlyRate","visible":true,"format":"currency"}]', 1,
         g.ms(10), g.ms(1))]
    rows["pfa_records"] = []
    rows["sync_logs"] = []
    return rows


AREAS = ["North Silo", "South Silo", "East Pad", "West Yard", "Central", "Offsite"]
CATEGORIES = ["Cranes", "Generators", "Scaffolding", "Vehicles", "Pumps", "Lighting",
              "Compressors", "Welding"]
SYNC_STATES = ["pristine", "modified", "pending_sync", "synced", "conflict"]
MANUFACTURERS = ["Caterpillar", "Liebherr", "Atlas Copco", "Genie", "JLG", None]


def pfa_rows(org_ids: list[str], n: int, seed: int = 1):
    """Yield ``n`` pfa_records tuples cheaply (benchmarks use a million)."""
    rnd = random.Random(seed * 7919 + n)
    rand = rnd.random
    norgs = len(org_ids)
    day = 86400000
    for i in range(n):
        start = BASE_MS + int(rand() * 400) * day
        created = BASE_MS - int(rand() * 90 * day)
        state = SYNC_STATES[i % 5]
        yield (
            "pfa%021d" % i,                      # 24-char stable id
            org_ids[i % norgs],
            "PFA-%07d" % (i // norgs),
            AREAS[i % 6],
            CATEGORIES[(i * 7) % 8],
            "Class %s" % "ABCD"[i % 4],
            "Rental" if i % 3 else "Purchase",
            None if i % 5 else "DOR-%d" % (i % 97),
            i % 2, 1 if i % 11 == 0 else 0, 1 if i % 4 == 0 else 0,
            round(rand() * 20000, 2),           # monthlyRate REAL (Float)
            None if i % 3 else round(rand() * 250000, 2),  # purchasePrice DECIMAL as REAL
            MANUFACTURERS[i % 6],
            "M-%d" % (i % 500),
            start, start + 30 * day,
            start + int(rand() * 10) * day, start + (30 + int(rand() * 60)) * day,
            None if i % 4 else start, None if i % 8 else start + 45 * day,
            state,
            created + day if state != "pristine" else None,
            "admin" if state != "pristine" else None,
            i % 7,
            # every 997th row came from a raw-SQL bulk insert: TEXT CURRENT_TIMESTAMP
            _text_ts(created) if i % 997 == 0 else created,
            created + 3600000,
        )


def _placeholders(n: int) -> str:
    return ",".join("?" * n)


def generate(path, pfa_records: int = 0, seed: int = 1) -> dict:
    """Create the sample database at ``path`` (must not exist); return counts."""
    path = Path(path)
    if path.exists():
        from .errors import UsageError
        raise UsageError("sample database path already exists: %s" % path)
    g = _Gen(seed)
    conn = sqlite3.connect(str(path), isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.execute("PRAGMA synchronous=OFF")  # generation only; the result is fsynced
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("BEGIN")
        conn.execute(PRISMA_MIGRATIONS_DDL)
        for stmt in SCHEMA_SQL.split(";"):
            if stmt.strip().replace("-- CreateTable", "").replace("-- CreateIndex", "").strip():
                conn.execute(stmt)
        mig_rows = []
        for k, (name, steps) in enumerate(MIGRATIONS):
            started = BASE_MS - (40 - k * 8) * 86400000
            mig_rows.append(("%08x-0000-4000-8000-%012x" % (seed, k),
                             hashlib.sha256(name.encode()).hexdigest(), started + 120,
                             name, None, None, started, steps))
        conn.executemany('INSERT INTO "_prisma_migrations" VALUES (%s)' % _placeholders(8),
                         mig_rows)
        rows = _baseline_rows(g)
        for table in TABLE_ORDER:
            if rows[table]:
                conn.executemany('INSERT INTO "%s" VALUES (%s)' % (
                    table, _placeholders(len(rows[table][0]))), rows[table])
        # Exercise sqlite_sequence on the empty AUTOINCREMENT tables: a log row was
        # written and purged, so the sequence is ahead of max(id).
        conn.execute('INSERT INTO "sync_logs" ("organizationId","syncType","status",'
                     '"startedAt") VALUES (?,?,?,?)', (rows["organizations"][0][0], "pems",
                                                      "purged", BASE_MS))
        conn.execute('DELETE FROM "sync_logs"')
        conn.execute("COMMIT")
        if pfa_records:
            org_ids = [r[0] for r in rows["organizations"]]
            insert = 'INSERT INTO "pfa_records" VALUES (%s)' % _placeholders(27)
            gen = pfa_rows(org_ids, pfa_records, seed)
            batch = 50_000
            while True:
                chunk = [r for _, r in zip(range(batch), gen)]
                if not chunk:
                    break
                conn.execute("BEGIN")
                conn.executemany(insert, chunk)
                conn.execute("COMMIT")
        counts = {t: conn.execute('SELECT count(*) FROM "%s"' % t).fetchone()[0]
                  for t in TABLE_ORDER}
        migrations = conn.execute('SELECT count(*) FROM "_prisma_migrations"').fetchone()[0]
    finally:
        conn.close()
    fd = os.open(str(path), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return {"path": str(path.resolve()), "counts": counts, "total": sum(counts.values()),
            "prisma_migrations": migrations, "admin_username": ADMIN_USERNAME,
            "password_hash_format": "pbkdf2_sha256$<iterations>$<salt b64>$<hash b64>"}
