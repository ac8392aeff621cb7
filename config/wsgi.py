"""The WSGI application, for gunicorn (bin/serve, config/gunicorn.conf.py)."""

import gc
import os

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

from config.proxies import client_address_settle

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

_django = get_wsgi_application()

# Every view imported now, and then all that is loaded kept out of the cyclic
# garbage collector's way: it lives as long as the process, yet each full
# collection walked it (some 60,000 objects, 13-15 ms on the benchmark
# machine), stalling whichever request was running and all queued behind it.
get_resolver().url_patterns  # noqa: B018
gc.freeze()

_TOO_MANY = (
    b'{"error": "invalid_request", "error_description": '
    b'"Too many parameters or too large a request"}'
)


def application(environ, start_response):
    # The client's address in REMOTE_ADDR before anything reads it, Django
    # or gunicorn's access log (config.proxies).
    client_address_settle(environ)
    try:
        return _django(environ, start_response)
    except (TooManyFieldsSent, RequestDataTooBig):
        # Django 5.2 parses the query string while it builds the request when
        # the Content-Type names a charset: a flood of parameters raises
        # before any middleware or error handler can answer, and the server
        # would send a bare 500.
        start_response(
            "400 Bad Request",
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(_TOO_MANY))),
                ("Cache-Control", "no-store"),
            ],
        )
        return [_TOO_MANY]
