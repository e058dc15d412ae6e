"""pgcutover: provable, low-downtime SQLite -> PostgreSQL cutover.

This package holds all migration logic and never imports ``ansible``; the modules in
``library/`` are thin adapters over the same functions the ``pgcutover`` CLI calls.
"""

__version__ = "0.1.0"
