"""Typed errors with a stable code.

The library raises; only the CLI (exit status + message) and the Ansible adapter
(``fail_json``) turn them into output. Messages name table, column and key, never
row values, so they are safe to log.
"""
from __future__ import annotations


class PgcutoverError(Exception):
    """Base class. ``code`` is stable and machine-readable."""

    code = "error"
    exit_status = 1

    def __init__(self, message: str, *, table: str | None = None,
                 column: str | None = None, key: object = None,
                 details: list | None = None):
        super().__init__(message)
        self.message = message
        self.table = table
        self.column = column
        self.key = key
        self.details = details or []

    def as_dict(self) -> dict:
        out = {"code": self.code, "message": self.message}
        for name in ("table", "column", "key"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.details:
            out["details"] = self.details
        return out

    def __str__(self) -> str:
        where = ", ".join(f"{n}={getattr(self, n)!r}" for n in ("table", "column", "key")
                          if getattr(self, n) is not None)
        return f"[{self.code}] {self.message}" + (f" ({where})" if where else "")


class UsageError(PgcutoverError):
    """Bad arguments or paths (export dir not empty, symlink, missing file)."""
    code = "usage"
    exit_status = 2


class SourceError(PgcutoverError):
    """The SQLite source cannot be read or is corrupt."""
    code = "source"


class BlockerError(PgcutoverError):
    """Data that cannot move without loss; ``details`` lists every blocker found."""
    code = "blocker"
    exit_status = 3


class ExportVerificationError(PgcutoverError):
    """An export directory does not match its manifest."""
    code = "export_mismatch"
    exit_status = 4


class TargetError(PgcutoverError):
    """The PostgreSQL target refused, or is not in the state we need."""
    code = "target"
    exit_status = 5


class SchemaMismatchError(TargetError):
    """``existing`` schema mode: SQLite columns that have no compatible target column."""
    code = "schema_mismatch"


class ImportFailedError(TargetError):
    """The import transaction was rolled back (reject, conversion error, count mismatch)."""
    code = "import_failed"


class TargetVerificationError(TargetError):
    """verify-target found a difference between PostgreSQL and the manifest."""
    code = "target_mismatch"
    exit_status = 6
