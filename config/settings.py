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
# Persistent connections: the token endpoint must not pay for a connection
# setup on every request. A connection the server closed (a restart) is
# dropped at the start of the next request by config.db, without the extra
# round trip per request that CONN_HEALTH_CHECKS costs.
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("CONN_HEALTH_CHECKS", default=False)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Prepared statements for the few hot queries that ask for them
    # (config.db.prepared_cursor); the ORM's queries are never prepared.
    # Turn off behind PgBouncer older than 1.21 in transaction mode.
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = (
        5 if env.bool("DATABASE_PREPARED_STATEMENTS", default=True) else None
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}
if CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
    # The same, without a new client object per cache call (config.cache).
    CACHES["default"]["BACKEND"] = "config.cache.RedisCache"

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

# OAuth token endpoint.
OAUTH_TOKEN_LIFETIME = env.int("OAUTH_TOKEN_LIFETIME", default=900)
# A PEM private key (EC P-256) as a value or a file path; when neither is set
# the key is generated once and kept in the database (oauth.keys).
OAUTH_SIGNING_KEY = env.str("OAUTH_SIGNING_KEY", default="")
OAUTH_SIGNING_KEY_FILE = env.str("OAUTH_SIGNING_KEY_FILE", default="")
# "last redeemed" is written at most once per client per this many seconds
# (the console shows it to the minute; AWS updates an access key's "last used"
# within hours). Each write also moves the client's token counts.
OAUTH_LAST_REDEEMED_INTERVAL = env.int("OAUTH_LAST_REDEEMED_INTERVAL", default=60)
# Rate limits of the token, introspection and revocation endpoints
# (oauth.throttle), on the shared cache; 0 turns a limit off. Requests per
# window, per client ID and per source address, each endpoint apart:
OAUTH_RATE_LIMIT_WINDOW = env.int("OAUTH_RATE_LIMIT_WINDOW", default=60)
OAUTH_RATE_LIMIT_PER_CLIENT = env.int("OAUTH_RATE_LIMIT_PER_CLIENT", default=600)
OAUTH_RATE_LIMIT_PER_IP = env.int("OAUTH_RATE_LIMIT_PER_IP", default=1200)
# Failed client authentications per window before requests are refused
# without checking the secret: per client ID and address, per address, and
# per client ID from addresses that have not authenticated as it lately.
OAUTH_FAILURE_WINDOW = env.int("OAUTH_FAILURE_WINDOW", default=300)
OAUTH_FAILURES_PER_CLIENT_AND_IP = env.int("OAUTH_FAILURES_PER_CLIENT_AND_IP", default=10)
OAUTH_FAILURES_PER_IP = env.int("OAUTH_FAILURES_PER_IP", default=50)
OAUTH_FAILURES_PER_CLIENT = env.int("OAUTH_FAILURES_PER_CLIENT", default=100)
# Clients kept in each worker's memory, changes pushed to every worker before
# the console confirms them (oauth.clientcache); needs Redis (CACHE_URL). A
# worker that loses Redis for this many seconds loads clients from the
# database again, and a change waits at most this long for a silent worker.
OAUTH_CLIENT_CACHE = env.bool("OAUTH_CLIENT_CACHE", default=True)
OAUTH_CLIENT_CACHE_LEASE = env.float("OAUTH_CLIENT_CACHE_LEASE", default=2.0)
# Changes made outside the app (SQL by hand) send no message: rows are
# reloaded at least this often (seconds).
OAUTH_CLIENT_CACHE_MAX_AGE = env.float("OAUTH_CLIENT_CACHE_MAX_AGE", default=30.0)
# Failed token requests of one client from one address are audited at most
# once per this many seconds; the next event says how many were left out.
OAUTH_AUDIT_FAILURE_INTERVAL = env.int("OAUTH_AUDIT_FAILURE_INTERVAL", default=600)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}
