"""Database engines behind one interface; the driver is imported only when needed."""

from __future__ import annotations

import importlib

from .base import Credentials, Engine

# Secret "engine" value -> (module, class). AWS's documented engine names.
ENGINES: dict[str, tuple[str, str]] = {
    "mysql": ("mysql", "MySQLEngine"),
    "aurora-mysql": ("mysql", "MySQLEngine"),
    "mariadb": ("mysql", "MariaDBEngine"),
    "postgres": ("postgres", "PostgresEngine"),
    "aurora-postgresql": ("postgres", "PostgresEngine"),
}
DEFAULT_PORTS = {
    "mysql": 3306,
    "aurora-mysql": 3306,
    "mariadb": 3306,
    "postgres": 5432,
    "aurora-postgresql": 5432,
}


def engine_for(name: str) -> Engine:
    """The engine for a secret's ``engine`` value (the caller validated the name)."""
    module_name, class_name = ENGINES[name]
    module = importlib.import_module(f"{__name__}.{module_name}")
    return getattr(module, class_name)()


__all__ = ["DEFAULT_PORTS", "ENGINES", "Credentials", "Engine", "engine_for"]
