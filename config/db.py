"""Persistent database connections that notice a restarted server for free.

Django's CONN_HEALTH_CHECKS runs a `SELECT 1` round trip before the first
query of every request; on the token endpoint that doubled the round trips.
Instead, at the start of each request, a PostgreSQL connection whose socket is
readable is dropped: an idle connection in autocommit mode receives nothing
unless the server is telling it goodbye (a restart, a terminated backend, an
idle timeout) or has already closed it. That costs one poll() system call.

What it cannot see (a peer that vanished without a word) ends as it would
with Django alone: the query fails, the caller gets a 503, and Django closes a
connection that had errors when the request ends, so the next one reconnects.
"""

import select
from contextlib import contextmanager
from functools import cache

from django.db import connections
from django.db.backends.utils import CursorDebugWrapper


def drop_dead_connections(**kwargs) -> None:
    for connection in connections.all(initialized_only=True):
        if (
            connection.vendor != "postgresql"
            or connection.connection is None
            or connection.in_atomic_block
        ):
            continue
        try:
            fd = connection.connection.pgconn.socket
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            dead = bool(poller.poll(0))
        except Exception:  # a connection that cannot even say which socket it has
            dead = True
        if dead:
            connection.close()


@contextmanager
def prepared_cursor(connection, *, binary: bool = False):
    """A cursor whose statements PostgreSQL parses and plans once per
    connection instead of on every execution: Django binds parameters on the
    client, so each query arrives as new text; this cursor sends them apart,
    and psycopg prepares a statement on its fifth execution (settings:
    DATABASE_PREPARED_STATEMENTS sets OPTIONS["prepare_threshold"]).

    It is Django's own cursor wrapper around it, so errors are translated and
    mark the connection as failed, and queries are logged and counted in
    tests as usual. For the few hot queries whose SQL is fixed; other
    databases get the ordinary cursor.

    With `binary`, results come in PostgreSQL's binary format, which psycopg
    loads in C: ten times cheaper for timestamps than the text format, for
    which Django installs a loader written in Python. Not for JSON columns:
    Django's converters expect them as text."""
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            yield cursor
        return
    connection.validate_thread_sharing()
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    raw = _raw_cursor(connection, binary)
    if connection.queries_logged:
        yield _PreparedDebugCursor(raw, connection)
    else:
        yield connection.make_cursor(raw)
    # Not closed: the next query on this connection reuses it (making a
    # psycopg cursor costs about as much as the rest of a prepared query).


def _raw_cursor(connection, binary: bool):
    kept = connection.__dict__.setdefault("_prepared_cursors", {})
    pg_connection, raw = kept.get(binary, (None, None))
    if pg_connection is not connection.connection or raw.closed:
        import psycopg

        with connection.wrap_database_errors:
            raw = (_binary_cursor_class() if binary else psycopg.Cursor)(connection.connection)
        kept[binary] = (connection.connection, raw)
    return raw


class _PreparedDebugCursor(CursorDebugWrapper):
    # Django reads the logged SQL back from a client-side cursor; this one
    # never holds it with the values in, so compose it the way Django would.
    def execute(self, sql, params=None):
        with self.debug_sql(self.db.ops.compose_sql(sql, params)):
            return self._execute_with_wrappers(sql, params, many=False, executor=self._execute)


@cache
def _binary_cursor_class():
    import psycopg

    class BinaryCursor(psycopg.Cursor):
        def execute(self, query, params=None, *, prepare=None, binary=True):
            return super().execute(query, params, prepare=prepare, binary=binary)

    return BinaryCursor
