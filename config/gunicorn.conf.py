"""gunicorn settings, shared by bin/serve and bench/run so that the benchmark
measures what production runs. Everything can be set from the environment."""

import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
# Sync workers: each handles one request at a time, so a worker per core
# (more when requests wait on the database) is the usual size.
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# The workers' heartbeat file is touched on every request: keep it in memory
# rather than on a disk (the gunicorn docs advise this for containers). It is
# made with mkstemp and unlinked at once, so a shared directory is safe.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108
# Behind a reverse proxy, the addresses it connects from: only those may set
# the scheme (X-Forwarded-Proto and the like). gunicorn never takes the
# client's address from X-Forwarded-For: the app does, from the proxies
# named in TRUSTED_PROXIES (config/proxies.py).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# gunicorn's control socket (for gunicornc) is by default one path per user
# ($XDG_RUNTIME_DIR/gunicorn.ctl or ~/.gunicorn/gunicorn.ctl), which every
# gunicorn that user starts on the host would share and take from each
# other. Off, unless GUNICORN_CONTROL_SOCKET gives this server its own path.
if os.environ.get("GUNICORN_CONTROL_SOCKET"):
    control_socket = os.environ["GUNICORN_CONTROL_SOCKET"]
else:
    control_socket_disable = True
accesslog = os.environ.get("ACCESS_LOG", "-")
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# Never a client secret in the access log (see the module).
logger_class = "config.gunicorn_logging.AccessLogWithoutSecrets"


def worker_exit(server, worker):
    # Last redeemed and token counts a worker has not written yet
    # (apiclients.usage), its usage log rows (apiclients.usagelog) and audit
    # events kept during a database outage (oauth.spool) go out before it
    # exits, so a restart or a scale-down loses none; its lease is given up (oauth.coherence).
    from apiclients import usage, usagelog
    from oauth import coherence, spool

    coherence.shutdown()
    usage.flush()
    usagelog.flush()
    spool.drain()
