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
    which Django installs a loader written in Python. JSON columns come as
    text either way, as Django's converters expect.

    The statement goes to libpq directly (`_LibpqCursor`): psycopg's own
    cursor spent about 100 us of CPU around each of these queries, three
    times what the database took to answer. Results are loaded by psycopg's
    Transformer from the connection's adapters, so the rows are the ones a
    psycopg cursor would return."""
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
    pg_connection = connection.connection
    if pg_connection.prepare_threshold is None or (
        # Inside a transaction that psycopg has not begun yet: psycopg must
        # send the BEGIN, so its own cursor runs the query.
        not connection.get_autocommit() and pg_connection.pgconn.transaction_status == _IDLE
    ):
        kind = ("psycopg", binary)
    else:
        kind = ("libpq", binary)
    kept = connection.__dict__.setdefault("_prepared_cursors", {})
    kept_connection, raw = kept.get(kind, (None, None))
    if kept_connection is not pg_connection or raw.closed:
        import psycopg

        with connection.wrap_database_errors:
            if kind[0] == "libpq":
                raw = _LibpqCursor(pg_connection, binary=binary)
            else:
                raw = (_binary_cursor_class() if binary else psycopg.Cursor)(pg_connection)
        kept[kind] = (pg_connection, raw)
    return raw


_IDLE = 0  # psycopg.pq.TransactionStatus.IDLE


class _LibpqCursor:
    """The part of a psycopg cursor that prepared_cursor's callers use
    (execute, fetchone, fetchall), on libpq directly: each statement is
    prepared once per connection (PQprepare), then run with PQexecPrepared.
    Parameters go as text, their types inferred by the server; rows are
    loaded by a psycopg Transformer on the connection's adapters."""

    def __init__(self, pg_connection, *, binary: bool):
        from psycopg.adapt import Transformer

        self._connection = pg_connection
        self._pgconn = pg_connection.pgconn
        self._transformer = Transformer(_AdaptContext(pg_connection))
        self._result_format = 1 if binary else 0
        self._statements: dict[str, bytes] = {}
        self._rows: list = []
        self._position = 0
        self.closed = False

    def execute(self, sql: str, params=()):
        from psycopg.adapt import PyFormat

        name = self._statements.get(sql)
        if name is None:
            name = f"_apiclients_{id(self):x}_{len(self._statements)}".encode()
            self._check(self._pgconn.prepare(name, _numbered(sql).encode(self._encoding)))
            self._statements[sql] = name
        transformer = self._transformer
        values = transformer.dump_sequence(params, [PyFormat.TEXT] * len(params)) if params else []
        result = self._pgconn.exec_prepared(name, values, result_format=self._result_format)
        self._check(result)
        transformer.set_pgresult(result)
        self._rows = transformer.load_rows(0, result.ntuples, tuple)
        self._position = 0
        return self

    @property
    def _encoding(self) -> str:
        return self._connection.info.encoding

    def _check(self, result) -> None:
        from psycopg import errors, pq

        if result.status not in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK):
            raise errors.error_from_result(result, encoding=self._encoding)

    def fetchone(self):
        if self._position >= len(self._rows):
            return None
        self._position += 1
        return self._rows[self._position - 1]

    def fetchall(self) -> list:
        rows = self._rows[self._position :]
        self._position = len(self._rows)
        return rows

    def close(self) -> None:
        self.closed = True


class _AdaptContext:
    """The connection's adapters, plus jsonb in binary as the text Django's
    JSONField expects (Django registers that for text results only)."""

    def __init__(self, pg_connection):
        from psycopg.adapt import AdaptersMap

        self.connection = pg_connection
        self.adapters = AdaptersMap(pg_connection.adapters)
        self.adapters.register_loader("jsonb", _jsonb_text_loader())


@cache
def _jsonb_text_loader():
    from psycopg import errors, pq
    from psycopg.adapt import Loader

    class JsonbBinaryAsText(Loader):
        format = pq.Format.BINARY

        def load(self, data) -> str:
            data = bytes(data)
            if data[:1] != b"\x01":  # jsonb's binary format version
                raise errors.DataError("unknown jsonb binary format")
            return data[1:].decode()

    return JsonbBinaryAsText


@cache
def _numbered(sql: str) -> str:
    # Django's %s placeholders as PostgreSQL's $1, $2, ... (these queries are
    # built from model metadata and hold no literal percent signs).
    parts = sql.split("%s")
    return "".join(f"{part}${i}" for i, part in enumerate(parts[:-1], 1)) + parts[-1]


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
        def __init__(self, connection, **kwargs):
            super().__init__(connection, **kwargs)
            self.adapters.register_loader("jsonb", _jsonb_text_loader())

        def execute(self, query, params=None, *, prepare=None, binary=True):
            return super().execute(query, params, prepare=prepare, binary=binary)

    return BinaryCursor
