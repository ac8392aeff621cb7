"""Django's PostgreSQL backend, with every call to the server bounded.

PostgreSQL's statement_timeout and libpq's connect_timeout (settings) bound a
server that answers slowly; neither helps when the server, or the network in
between, stops answering altogether: the query never reaches the server, and
psycopg waits on its socket with no time limit (it has no client-side query
timeout; TCP keepalives and tcp_user_timeout do not fire while a middlebox
acknowledges the packets). So:

- a watchdog thread shuts the socket of a statement still waiting
  DATABASE_TIMEOUT + 0.5 s after it was sent (the server's own
  statement_timeout fires first whenever the server can hear us); psycopg
  then raises, and the caller answers 503;
- a circuit breaker (pybreaker), opened by a connection that failed that way
  or could not be made, fails every statement and connection attempt of this
  process at once for DATABASE_RETRY_AFTER seconds, then lets one through:
  a silent server costs one timeout per interval, not one per request;
- the health check before a request's first query is a poll() of the idle
  socket (readable only when the server is closing it: a restart, an idle
  timeout), instead of the `SELECT 1` round trip Django makes.
"""

import itertools
import os
import select
import socket
import threading
import time
from functools import cache

import pybreaker
from django.conf import settings
from django.db import DatabaseError, OperationalError
from django.db.backends.postgresql import base


class _Watchdog:
    """Shuts the sockets of statements that outlived their deadline."""

    def __init__(self):
        self.lock = threading.Lock()
        self.running: dict[int, tuple[float, int]] = {}  # key -> (deadline, socket fd)
        self.keys = itertools.count()
        self.thread: threading.Thread | None = None

    def arm(self, fd: int, seconds: float) -> int:
        key = next(self.keys)
        with self.lock:
            self.running[key] = (time.monotonic() + seconds, fd)
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="db-watchdog", daemon=True)
                self.thread.start()
        return key

    def disarm(self, key: int) -> None:
        with self.lock:
            self.running.pop(key, None)

    def _run(self) -> None:
        while True:
            time.sleep(0.1)
            now = time.monotonic()
            with self.lock:
                for key, (deadline, fd) in list(self.running.items()):
                    if deadline <= now:
                        # Under the lock: the statement is still waiting, so
                        # the socket is still its connection's.
                        del self.running[key]
                        _shut(fd)


def _shut(fd: int) -> None:
    try:
        # A duplicate of the descriptor: shutting it down ends the
        # connection for its owner, closing it leaves the owner's fd alone.
        with socket.socket(fileno=os.dup(fd)) as sock:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


_watchdog = _Watchdog()


@cache
def _breaker(reset_timeout: float) -> pybreaker.CircuitBreaker:
    return pybreaker.CircuitBreaker(
        fail_max=1,
        reset_timeout=reset_timeout,
        # Only a lost connection is a fault of the server; an error in a
        # statement (a constraint, a cancelled slow query) is not.
        exclude=[lambda exc: not getattr(exc, "connection_lost", False)],
        throw_new_error_on_trip=False,
        name="database",
    )


def breaker() -> pybreaker.CircuitBreaker:
    return _breaker(settings.DATABASE_RETRY_AFTER)


def _unavailable(exc: pybreaker.CircuitBreakerError) -> OperationalError:
    return OperationalError(
        f"The database is unavailable; not tried again for {settings.DATABASE_RETRY_AFTER:g} s"
    )


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.execute_wrappers.append(self._bounded)

    def get_new_connection(self, conn_params):
        try:
            with breaker().calling():
                try:
                    return super().get_new_connection(conn_params)
                except Exception as exc:
                    exc.connection_lost = True
                    raise
        except pybreaker.CircuitBreakerError as exc:
            raise _unavailable(exc) from None

    def _bounded(self, execute, sql, params, many, context):
        try:
            with breaker().calling():
                key = _watchdog.arm(self.connection.fileno(), settings.DATABASE_TIMEOUT + 0.5)
                try:
                    return execute(sql, params, many, context)
                except DatabaseError as exc:
                    exc.connection_lost = self._lost()
                    raise
                finally:
                    _watchdog.disarm(key)
        except pybreaker.CircuitBreakerError as exc:
            raise _unavailable(exc) from None

    def _lost(self) -> bool:
        connection = self.connection
        return connection is None or connection.closed or connection.broken

    def is_usable(self) -> bool:
        # Django's health check (CONN_HEALTH_CHECKS), once per request before
        # its first query. An idle connection receives nothing unless the
        # server is telling it goodbye, so a readable socket means a dead one.
        if self._lost():
            return False
        try:
            poller = select.poll()
            poller.register(self.connection.fileno(), select.POLLIN)
            return not poller.poll(0)
        except (OSError, ValueError):
            return False
