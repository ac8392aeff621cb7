"""Settings, all from the environment (django-environ); see .env.example.

`bin/serve` and `bin/test` write a `.env` with a random SECRET_KEY on first run,
so a fresh clone works; production sets the variables itself.
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# No default: a production deployment must choose its own key.
SECRET_KEY = env("SECRET_KEY")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# The public base URL of this deployment: shown in the one-time reveal, used as
# the token issuer and in the curl examples.
BASE_URL = env.str("BASE_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "django_q",
    # The management API's OpenAPI document and Swagger UI (its static files).
    "ninja",
    "apiclients",
    "oauth",
]

MIDDLEWARE = [
    # First: every other part sees the client's address (config.proxies).
    "config.proxies.ClientAddressMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "config.middleware.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "apiclients.roles.context_processor",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
_POSTGRES = DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
# Persistent connections: the token endpoint must not pay for a connection
# setup on every request. A connection the server closed (a restart) is
# dropped before the next request's first query; on PostgreSQL that check is
# a poll() of the socket, not a round trip (config/postgresql).
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
DATABASES["default"]["CONN_HEALTH_CHECKS"] = _POSTGRES
# Seconds any one statement, or a connection attempt, may take before it is
# given up (config/postgresql): a silent server costs a request this long at most,
# and then one such wait per DATABASE_RETRY_AFTER seconds per process.
DATABASE_TIMEOUT = env.float("DATABASE_TIMEOUT", default=2.0)
DATABASE_RETRY_AFTER = env.float("DATABASE_RETRY_AFTER", default=2.0)
if _POSTGRES:
    # The same backend with timeouts on every call (config/postgresql).
    DATABASES["default"]["ENGINE"] = "config.postgresql"
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "connect_timeout": max(2, round(DATABASE_TIMEOUT)),  # libpq's minimum is 2
            "options": f"-c statement_timeout={int(DATABASE_TIMEOUT * 1000)}"
            " -c idle_in_transaction_session_timeout=60000",
            # Lost packets (a cable pulled, a host gone): unacknowledged data
            # fails the connection after this long, idle ones are probed.
            "tcp_user_timeout": int(DATABASE_TIMEOUT * 1000),
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 2,
            "keepalives_count": 3,
        }
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}
# Redis (CACHE_URL=redis://...) holds the rate-limit counters every process
# shares. Each call waits at most REDIS_TIMEOUT seconds and is never retried
# (a counter must not count twice); after a failure, Redis is left alone for
# REDIS_RETRY_AFTER seconds and requests go on without it (config.redis).
REDIS_TIMEOUT = env.float("REDIS_TIMEOUT", default=0.25)
REDIS_RETRY_AFTER = env.float("REDIS_RETRY_AFTER", default=2.0)
REDIS_URL = CACHES["default"]["LOCATION"] if "redis" in CACHES["default"]["BACKEND"] else ""
if REDIS_URL:
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    CACHES["default"]["OPTIONS"] = {
        "socket_timeout": REDIS_TIMEOUT,
        "socket_connect_timeout": REDIS_TIMEOUT,
        "retry": Retry(NoBackoff(), 0),
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
# Argon2 for people's passwords. Machine secrets use a fast digest instead
# (apiclients.secrets) because they are high-entropy.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]

# Failed sign-ins allowed per window (apiclients.signin), per username and
# source address, per source address, and per username from anywhere.
LOGIN_FAILURE_WINDOW = env.int("LOGIN_FAILURE_WINDOW", default=900)
LOGIN_FAILURES_PER_USER_AND_IP = env.int("LOGIN_FAILURES_PER_USER_AND_IP", default=5)
LOGIN_FAILURES_PER_IP = env.int("LOGIN_FAILURES_PER_IP", default=30)
LOGIN_FAILURES_PER_USER = env.int("LOGIN_FAILURES_PER_USER", default=50)
# A user who signed in from an address is remembered there this many days;
# from it, the per-address and per-username limits do not apply to them
# (someone else's failures do not lock them out); 0 turns this off.
LOGIN_KNOWN_ADDRESS_DAYS = env.int("LOGIN_KNOWN_ADDRESS_DAYS", default=30)

# After an admin confirms a reset, rotation or deletion with their password,
# further ones are not asked again for this many seconds (apiclients.sudo).
CONSOLE_SUDO_SECONDS = env.int("CONSOLE_SUDO_SECONDS", default=300)

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "apiclients:list"
LOGOUT_REDIRECT_URL = "login"

SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=8 * 3600)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_HTTPS = env.bool("SECURE_HTTPS", default=False)
SESSION_COOKIE_SECURE = SECURE_HTTPS
CSRF_COOKIE_SECURE = SECURE_HTTPS
SECURE_HSTS_SECONDS = 31536000 if SECURE_HTTPS else 0
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Behind a reverse proxy: the proxies (addresses or CIDR ranges) whose
# X-Forwarded-For, or Forwarded (RFC 7239) with TRUSTED_PROXY_HEADER=Forwarded,
# names the client (config.proxies). Empty: the client is the connection's peer.
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])
TRUSTED_PROXY_HEADER = env.str("TRUSTED_PROXY_HEADER", default="X-Forwarded-For")
if env.bool("BEHIND_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": env.str(
            "STATICFILES_BACKEND",
            default="whitenoise.storage.CompressedManifestStaticFilesStorage",
        )
    },
}

# Credential hygiene (apiclients.hygiene): secrets older than this are marked
# for rotation; expiry dates closer than this are flagged in the list.
SECRET_ROTATION_REMINDER_DAYS = env.int("SECRET_ROTATION_REMINDER_DAYS", default=90)
CLIENT_EXPIRY_WARNING_DAYS = env.int("CLIENT_EXPIRY_WARNING_DAYS", default=30)

# The OAuth token endpoint, its rate limits and the memory each process keeps
# (oauth/); every variable is documented in the README and .env.example.
OAUTH = {
    # Seconds a token lives.
    "TOKEN_LIFETIME": env.int("OAUTH_TOKEN_LIFETIME", default=900),
    # A PEM private key (EC P-256) as a value or a file path; when neither is
    # set the key is generated once and kept in the database (oauth.keys).
    "SIGNING_KEY": env.str("OAUTH_SIGNING_KEY", default=""),
    "SIGNING_KEY_FILE": env.str("OAUTH_SIGNING_KEY_FILE", default=""),
    # "Last redeemed" and the token counts are written at most once per
    # client per this many seconds per process (the console shows minutes;
    # AWS updates an access key's "last used" within hours).
    "LAST_REDEEMED_INTERVAL": env.int("OAUTH_LAST_REDEEMED_INTERVAL", default=60),
    # Requests per window (seconds), per client ID and per source address,
    # each endpoint apart; 0 turns a limit off (oauth.throttle).
    "RATE_LIMIT_WINDOW": env.int("OAUTH_RATE_LIMIT_WINDOW", default=60),
    "RATE_LIMIT_PER_CLIENT": env.int("OAUTH_RATE_LIMIT_PER_CLIENT", default=600),
    "RATE_LIMIT_PER_IP": env.int("OAUTH_RATE_LIMIT_PER_IP", default=1200),
    # Failed client authentications per window before requests are refused
    # without checking the secret: per client ID and address, per address,
    # and per client ID from addresses that have not authenticated as it lately.
    "FAILURE_WINDOW": env.int("OAUTH_FAILURE_WINDOW", default=300),
    "FAILURES_PER_CLIENT_AND_IP": env.int("OAUTH_FAILURES_PER_CLIENT_AND_IP", default=10),
    "FAILURES_PER_IP": env.int("OAUTH_FAILURES_PER_IP", default=50),
    "FAILURES_PER_CLIENT": env.int("OAUTH_FAILURES_PER_CLIENT", default=100),
    # Failed token requests of one client from one address are audited at
    # most once per this many seconds; the next event says how many were
    # left out.
    "AUDIT_FAILURE_INTERVAL": env.int("OAUTH_AUDIT_FAILURE_INTERVAL", default=600),
    # Audit events that could not be written (the database unreachable) wait
    # here, and are written once it is back (oauth.spool).
    "SPOOL_DIR": env.str("OAUTH_SPOOL_DIR", default=str(BASE_DIR / "var" / "spool")),
    # Clients, revocations and users pages kept in each process's memory,
    # every change applied everywhere before it is confirmed
    # (oauth.coherence); on by default with PostgreSQL.
    "CLIENT_CACHE": env.bool("OAUTH_CLIENT_CACHE", default=_POSTGRES),
    # Seconds a process may use its memory after it last heard from the
    # database: the longest a change waits for a silent process.
    "CLIENT_CACHE_LEASE": env.float("OAUTH_CLIENT_CACHE_LEASE", default=2.0),
    # Changes made outside the app (SQL by hand) are not announced: rows are
    # reloaded at least this often (seconds).
    "CLIENT_CACHE_MAX_AGE": env.float("OAUTH_CLIENT_CACHE_MAX_AGE", default=30.0),
    # Each client's requests by minute, address, user agent and outcome
    # (apiclients.usagelog), counted in the process and written with the
    # token counts.
    "USAGE_LOG": env.bool("OAUTH_USAGE_LOG", default=True),
}

# Days the usage log keeps its rows; `manage.py prune_usage_log` (and the
# job runner, daily) deletes older ones.
USAGE_LOG_RETENTION_DAYS = env.int("USAGE_LOG_RETENTION_DAYS", default=90)

# Alerts (apiclients.alerts). Email through Django's backends, configured by
# one URL: consolemail:// (printed, the default), smtp://user:pw@host:587,
# smtp+tls://..., smtp+ssl://...
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="API Clients <alerts@localhost>")
# Seconds an SMTP connection or command may take.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
# Seconds a webhook call may take (connect, and each read).
ALERT_HTTP_TIMEOUT = env.int("ALERT_HTTP_TIMEOUT", default=5)
# A failed delivery is retried after this many seconds, doubled each time,
# up to ALERT_MAX_ATTEMPTS attempts in all.
ALERT_RETRY_BASE_SECONDS = env.int("ALERT_RETRY_BASE_SECONDS", default=30)
ALERT_MAX_ATTEMPTS = env.int("ALERT_MAX_ATTEMPTS", default=8)
# A client with no token for this many days is "unused".
ALERT_UNUSED_DAYS = env.int("ALERT_UNUSED_DAYS", default=90)

# The job runner (django-q2, over the database: apiclients.tasks). A task
# not acknowledged within JOBS_RETRY seconds (its worker died) is run again.
# A delivery is claimed for ALERT_CLAIM_SECONDS: a worker that dies holding
# it leaves it to be sent again after that.
ALERT_CLAIM_SECONDS = ALERT_HTTP_TIMEOUT + EMAIL_TIMEOUT + 5
JOBS_TIMEOUT = ALERT_CLAIM_SECONDS + 10
Q_CLUSTER = {
    "name": "apiclients",
    "orm": "default",
    "workers": env.int("JOBS_WORKERS", default=1),
    "timeout": JOBS_TIMEOUT,
    "retry": env.int("JOBS_RETRY", default=JOBS_TIMEOUT + 5),
    # Tasks that raised are done with: deliveries keep their own retries.
    "ack_failures": True,
    "max_attempts": 5,
    # Missed runs of a periodic check are not run once each on restart.
    "catch_up": False,
    "poll": env.float("JOBS_POLL", default=1.0),
    "save_limit": 200,
    "label": "Jobs",
}

# The management API (/v1/api-clients, /graphql): requests per minute per
# caller (a personal access token's user, or an API client); 0 turns it off.
MANAGEMENT_API_RATE_LIMIT = env.int("MANAGEMENT_API_RATE_LIMIT", default=300)
# What the Taegis GraphQL operations report as a client's `environment`.
ENVIRONMENT_NAME = env.str("ENVIRONMENT_NAME", default="production")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}
