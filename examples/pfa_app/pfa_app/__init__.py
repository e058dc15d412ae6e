"""PFA Vanguard sample API: the application the cutover runbook moves from SQLite to
PostgreSQL. Python standard library + psycopg2 only; it does not import pgcutover."""

__version__ = "1.0.0"
