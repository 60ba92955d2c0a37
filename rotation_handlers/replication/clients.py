"""One SSM client per region per container (module-level cache).

Clients use botocore's ``standard`` retry mode and boto3's own endpoint resolution, so
``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_SSM`` and the shared config file are honoured.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config

_CONFIG = Config(retries={"mode": "standard"})
_lock = threading.Lock()
_clients: dict[tuple[str, str], Any] = {}


def client(service: str, region: str) -> Any:
    """The cached boto3 client for ``service`` in ``region`` (thread-safe creation)."""
    key = (service, region)
    cached = _clients.get(key)
    if cached is not None:
        return cached
    with _lock:
        cached = _clients.get(key)
        if cached is None:
            # A private session: the default session is not safe to share across threads.
            cached = boto3.session.Session().client(service, region_name=region, config=_CONFIG)
            _clients[key] = cached
        return cached


def ssm(region: str) -> Any:
    return client("ssm", region)


def reset() -> None:
    """Forget all cached clients (tests, or after credentials change)."""
    with _lock:
        _clients.clear()
