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

from django.db import connections


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
