"""Open a psycopg2 connection whose failure names the server's SQLSTATE, in any language.

libpq gives psycopg2 a failed connection's error as text only (``pgcode`` is None), and the
server writes that text in its own language (``lc_messages``): a German server says
"Passwort-Authentifizierung ... fehlgeschlagen". The SQLSTATE the server sent with it (28P01
for a wrong password) appears in libpq's text only at error verbosity VERBOSE
(``FATAL:  28P01: ...``), which libpq lets a client set on a connection once it exists and
before the server's answer is read (``PQsetErrorVerbosity``,
https://www.postgresql.org/docs/current/libpq-control.html).

psycopg2 offers exactly that moment: with a wait callback installed
(``psycopg2.extensions.set_wait_callback``) it starts the connection with ``PQconnectStart``
and lets the callback poll it, and ``connection.pgconn_ptr`` is the libpq handle. The
callback sets VERBOSE, then polls until the connection is made or fails, within
``DB_CONNECT_TIMEOUT`` for the whole login (libpq applies ``connect_timeout`` only to blocking
connects). Once connected, the default verbosity and blocking mode are restored and the
callback removed, so statements run exactly as on a blocking connection.

The callback is process-wide; it is installed only for the duration of one connect (under a
lock), and any other thread's psycopg2 call that meets it during that window is simply polled
to completion as a blocking call would be. If libpq's functions cannot be found (another
psycopg2 build), the blocking ``psycopg2.connect`` is used and the caller falls back to
libpq's English messages.
"""

from __future__ import annotations

import ctypes
import select
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg2
import psycopg2.extensions

_PQERRORS_DEFAULT = 1
_PQERRORS_VERBOSE = 2

_lock = threading.Lock()
_libpq_functions: tuple[Any, Any] | bool | None = False  # False: not looked up yet


def _libpq() -> tuple[Any, Any] | None:
    """``PQsetErrorVerbosity`` and ``PQsetnonblocking`` of the libpq psycopg2 is linked against."""
    global _libpq_functions
    if _libpq_functions is False:
        try:
            from psycopg2 import _psycopg

            lib = ctypes.CDLL(_psycopg.__file__)  # symbol lookup also searches its libpq
            verbosity, nonblocking = lib.PQsetErrorVerbosity, lib.PQsetnonblocking
            verbosity.argtypes, verbosity.restype = [ctypes.c_void_p, ctypes.c_int], ctypes.c_int
            nonblocking.argtypes, nonblocking.restype = [ctypes.c_void_p, ctypes.c_int], ctypes.c_int
            _libpq_functions = (verbosity, nonblocking)
        except (OSError, AttributeError, ImportError):
            _libpq_functions = None
    return _libpq_functions or None


def _poll(conn: Any, deadline: float) -> None:
    """Drive ``conn`` (connecting or running a statement) to completion, as a blocking call would."""
    while True:
        state = conn.poll()
        if state == psycopg2.extensions.POLL_OK:
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise psycopg2.OperationalError("timeout expired")
        if state == psycopg2.extensions.POLL_READ:
            ready = select.select([conn.fileno()], [], [], remaining)[0]
        elif state == psycopg2.extensions.POLL_WRITE:
            ready = select.select([], [conn.fileno()], [], remaining)[1]
        else:
            raise psycopg2.OperationalError(f"unexpected poll state {state}")
        if not ready:
            raise psycopg2.OperationalError("timeout expired")


def _wait_callback(
    owner: int, timeout: float, set_verbosity: Callable[[int, int], int]
) -> Callable[[Any], None]:
    deadline = time.monotonic() + timeout

    def wait(conn: Any) -> None:
        if threading.get_ident() != owner:
            _poll(conn, time.monotonic() + 3600)  # another thread's call in the window: just block
            return
        set_verbosity(conn.pgconn_ptr, _PQERRORS_VERBOSE)
        _poll(conn, deadline)

    return wait


def connect_reporting_sqlstate(kwargs: dict[str, Any]) -> Any:
    """``psycopg2.connect(**kwargs)``; a failed login's message carries the server's SQLSTATE
    (``FATAL:  28P01: ...``). ``kwargs["connect_timeout"]`` bounds the whole login."""
    functions = _libpq()
    if functions is None:
        return psycopg2.connect(**kwargs)
    set_verbosity, set_nonblocking = functions
    with _lock:
        previous = psycopg2.extensions.get_wait_callback()
        callback = _wait_callback(threading.get_ident(), float(kwargs["connect_timeout"]), set_verbosity)
        psycopg2.extensions.set_wait_callback(callback)
        try:
            conn = psycopg2.connect(**kwargs)
        finally:
            psycopg2.extensions.set_wait_callback(previous)
    set_verbosity(conn.pgconn_ptr, _PQERRORS_DEFAULT)
    set_nonblocking(conn.pgconn_ptr, 0)
    return conn
