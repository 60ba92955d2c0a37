"""Bounded retry with full jitter for throttled Parameter Store calls.

botocore's ``standard`` retry mode already retries throttling a few times with short
backoff; Parameter Store's write limits are low enough that a burst of changes can exhaust
that, so every call also goes through :meth:`RetryPolicy.call`. Only throttling is retried
here; anything else (and throttling after ``max_attempts``) propagates to the caller.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

THROTTLING_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyUpdates",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottledException",
    }
)


def error_code(exc: BaseException) -> str:
    """A value-free description of ``exc``: the AWS error code, or the exception type.

    botocore error *messages* can echo request values (ParameterPatternMismatch,
    ParamValidationError, ...), so only codes and type names are ever logged or raised.
    """
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code") or "ClientError")
    return type(exc).__name__


class DeadlineReached(BaseException):
    """A backoff would sleep past the run's deadline: stop this work item instead (reconcile).

    A ``BaseException`` so that no ``except Exception`` on the way records the pair as failed.
    """


def is_throttling(exc: BaseException) -> bool:
    return isinstance(exc, ClientError) and error_code(exc) in THROTTLING_CODES


@dataclass
class RetryPolicy:
    """``max_attempts`` tries in total; sleep ``uniform(0, min(cap, base * 2**n))`` between them."""

    max_attempts: int = 8
    base: float = 0.2
    cap: float = 10.0
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)
    retries: int = 0
    #: Called with the API method before every attempt (reconcile's per-region request budget).
    before: Callable[[Callable[..., Any]], None] | None = None
    #: A ``clock()`` value no backoff may sleep past (reconcile's deadline); ``None`` = no limit.
    deadline: float | None = None
    clock: Callable[[], float] = time.monotonic
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def delay(self, attempt: int) -> float:
        with self._lock:
            return self.rng.uniform(0, min(self.cap, self.base * (2**attempt)))

    def backoff(self, attempt: int) -> None:
        """Count a throttling retry and sleep the full-jitter delay for ``attempt`` (0-based).

        Raises :class:`DeadlineReached` instead if the sleep would end past ``deadline``.
        """
        delay = self.delay(attempt)
        if self.deadline is not None and self.clock() + delay > self.deadline:
            raise DeadlineReached(f"a {delay:.1f} s backoff would end past the deadline")
        with self._lock:
            self.retries += 1
        self.sleep(delay)

    def once(self) -> RetryPolicy:
        """The same policy without throttling retries (the caller re-plans instead)."""
        return RetryPolicy(
            1,
            self.base,
            self.cap,
            self.sleep,
            self.rng,
            before=self.before,
            deadline=self.deadline,
            clock=self.clock,
        )

    def call(self, fn: Callable[..., dict[str, Any]], /, **kwargs: Any) -> dict[str, Any]:
        attempt = 0
        while True:
            if self.before is not None:
                self.before(fn)
            try:
                return fn(**kwargs)
            except ClientError as exc:
                attempt += 1
                if not is_throttling(exc) or attempt >= self.max_attempts:
                    raise
                self.backoff(attempt - 1)
