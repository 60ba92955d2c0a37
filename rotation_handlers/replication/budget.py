"""Reconcile's request budget: one token bucket per region, shared by all of the run's threads.

Parameter Store's request quotas are per account and region and shared with everything else
there, including live replication. Reconcile takes a token before every HTTP request its
clients send (:meth:`RegionBudget.attach`: botocore's ``request-created`` event fires for every
attempt, so botocore's own retries count as well as the replicator's) and waits when the
region's bucket is empty, so a full sync never runs at more than
``RECONCILE_REQUESTS_PER_SECOND`` in any region (``0`` = no limit).

The default (20, ``config.py``) is half of Parameter Store's default throughput of 40
transactions per second shared by GetParameter, GetParameters and GetParametersByPath per
account and region ("AWS Systems Manager endpoints and quotas", Parameter Store, "Max
throughput (transactions per second)", https://docs.aws.amazon.com/general/latest/gr/ssm.html);
the buckets hold a single token, so no second ever sees more than the rate (a bucket as large as
the rate would allow twice the rate in the first second, the whole quota).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` stored; :meth:`take` blocks until one is free."""

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate
        self.burst = max(1.0, burst if burst is not None else rate)
        self.tokens = self.burst
        self.clock, self.sleep = clock, sleep
        self.stamp = clock()
        self.waited = 0.0
        self._lock = threading.Lock()

    def take(self) -> None:
        """Reserve a token; if the bucket is in debt, sleep until that token has been earned."""
        with self._lock:
            now = self.clock()
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            self.tokens -= 1
            wait = -self.tokens / self.rate if self.tokens < 0 else 0.0
            self.waited += wait
        if wait > 0:
            self.sleep(wait)


class RegionBudget:
    """A :class:`TokenBucket` per region; :meth:`before_call` fits :attr:`RetryPolicy.before`."""

    def __init__(self, rate: float, **bucket_options: Any) -> None:
        self.rate = rate
        bucket_options.setdefault("burst", 1.0)  # no burst above the rate (see module docstring)
        self._options = bucket_options
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def bucket(self, region: str) -> TokenBucket:
        with self._lock:
            if region not in self._buckets:
                self._buckets[region] = TokenBucket(self.rate, **self._options)
            return self._buckets[region]

    def take(self, region: str) -> None:
        """Take a token from ``region``'s bucket (wait if it is empty)."""
        if self.rate > 0:
            self.bucket(region).take()

    def before_call(self, method: Callable[..., Any]) -> None:
        """Take a token from the bucket of the region of ``method``'s boto3 client."""
        region = getattr(getattr(getattr(method, "__self__", None), "meta", None), "region_name", None)
        if region:
            self.take(region)

    def attach(self, clients: Iterable[Any]) -> Callable[[], None]:
        """Take a token before every HTTP request of ``clients``, retries included; returns detach."""
        handlers: list[tuple[Any, Callable[..., None]]] = []
        for client in clients:

            def on_request(_region: str = client.meta.region_name, **_: Any) -> None:
                self.take(_region)

            client.meta.events.register("request-created", on_request)
            handlers.append((client, on_request))

        def detach() -> None:
            for client, handler in handlers:
                client.meta.events.unregister("request-created", handler)

        return detach

    def waited(self) -> float:
        with self._lock:
            return sum(b.waited for b in self._buckets.values())
