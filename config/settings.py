"""Settings for hashbank, read from environment variables.

With nothing set but ``DEBUG=1`` the server runs on SQLite, Celery tasks run
in-process, and development secrets are generated into ``var/`` (git-ignored).
With ``DEBUG`` off (the default), every production secret must be provided and
malformed values stop the process at start-up with a message naming the
variable.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.env import envbool, envint, envlist, envsecret, envstr

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(envstr("HASHBANK_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = envbool("DEBUG", False)


def _dev_secret(filename: str, make: Callable[[], str]) -> str:
    """A development-only secret, generated once into var/ with owner-only permissions."""
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    path = VAR_DIR / filename
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(make() + "\n")
    return path.read_text(encoding="utf-8").strip()


def _required_secret(name: str, dev_file: str) -> str:
    value = envsecret(name)
    if value:
        return value
    if DEBUG:
        return _dev_secret(dev_file, lambda: secrets.token_urlsafe(48))
    raise ImproperlyConfigured(
        f"{name} (or {name}_FILE) must be set when DEBUG is off. "
        "For local development set DEBUG=1 and a development value is generated in var/."
    )


SECRET_KEY = _required_secret("SECRET_KEY", "dev-secret-key")
# Keys the HMAC under which case numbers are stored. Separate from SECRET_KEY so
# that rotating Django's session key does not orphan every victim's case.
HASHBANK_CASE_KEY = _required_secret("HASHBANK_CASE_KEY", "dev-case-key")
# Seals secrets the bank must read back (webhook secrets, peer credentials).
HASHBANK_ENCRYPTION_KEY = _required_secret("HASHBANK_ENCRYPTION_KEY", "dev-encryption-key")
if len(HASHBANK_ENCRYPTION_KEY) < 32:
    raise ImproperlyConfigured(
        "HASHBANK_ENCRYPTION_KEY must be at least 32 characters of random data"
    )
if len(HASHBANK_CASE_KEY) < 32:
    raise ImproperlyConfigured("HASHBANK_CASE_KEY must be at least 32 characters of random data")

ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set when DEBUG is off (comma-separated)")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", [])

# The name this bank signs as: "<BANK_ORIGIN>/lists/<slug>" is each list's origin.
BANK_ORIGIN = envstr("BANK_ORIGIN", "hashbank.localhost" if DEBUG else "")
if not BANK_ORIGIN:
    raise ImproperlyConfigured(
        "BANK_ORIGIN must be set when DEBUG is off, e.g. hashbank.example.org"
    )
if not re.fullmatch(r"[A-Za-z0-9.\-_:/]{1,200}", BANK_ORIGIN) or "://" in BANK_ORIGIN:
    raise ImproperlyConfigured(
        f"BANK_ORIGIN must be a host-like name without scheme, spaces or '+', got {BANK_ORIGIN!r}"
    )

# Ed25519 keys that sign every list's checkpoints (see hashbank/keyring.py for the format).
# Never stored in the database.
from hashbank.keyring import KeyringError, new_keyring, parse_keyring  # noqa: E402

HASHBANK_SIGNING_KEYS_TEXT = envsecret("HASHBANK_SIGNING_KEY")
if not HASHBANK_SIGNING_KEYS_TEXT:
    if not DEBUG:
        raise ImproperlyConfigured(
            "HASHBANK_SIGNING_KEY (or HASHBANK_SIGNING_KEY_FILE) must be set when DEBUG is off; "
            "create one with: python manage.py signing_key_generate --file PATH"
        )
    HASHBANK_SIGNING_KEY_FILE = str(VAR_DIR / "signing.key")
    HASHBANK_SIGNING_KEYS_TEXT = _dev_secret("signing.key", new_keyring)
else:
    HASHBANK_SIGNING_KEY_FILE = envstr("HASHBANK_SIGNING_KEY_FILE", "")
try:
    HASHBANK_SIGNING_KEYS = parse_keyring(HASHBANK_SIGNING_KEYS_TEXT)
except KeyringError as exc:
    raise ImproperlyConfigured(f"HASHBANK_SIGNING_KEY: {exc}") from None

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "hashbank",
    "cases",
    "exchange",
    "reviewers",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "webapi.guard.ApiRequestGuard",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
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
            ],
        },
    },
]

_database_url = envstr("DATABASE_URL", "")
if _database_url:
    try:
        DATABASES = {"default": dj_database_url.parse(_database_url, conn_max_age=60)}
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL is malformed: {exc}") from None
else:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DATABASE_URL must be set when DEBUG is off, e.g. postgres://user:pass@host:5432/hashbank"
        )
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(VAR_DIR / "db.sqlite3"),
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
        }
    }
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

_cache_url = envstr("CACHE_URL", "")
if _cache_url:
    if not _cache_url.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured(f"CACHE_URL must be a redis:// URL, got {_cache_url!r}")
    # Rate limits (django-ratelimit) count each client's requests here, so every
    # process shares the counts.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": _cache_url,
        }
    }
else:
    # Per-process cache: fine for one development process. Rate limits need a
    # shared cache in production, so DEBUG-off requires CACHE_URL.
    if not DEBUG:
        raise ImproperlyConfigured("CACHE_URL (redis://...) must be set when DEBUG is off")
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("nl", "Nederlands"), ("sv", "Svenska")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(envstr("STATIC_ROOT", str(VAR_DIR / "static")))

# The case API never takes media: bodies are small JSON documents.
HASHBANK_MAX_BODY_BYTES = 64 * 1024
# Django refuses anything larger outright; ApiRequestGuard applies the per-API caps.
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 0

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "webapi.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "hashbank API",
    "DESCRIPTION": (
        "Hash-sharing server: victims submit hashes (never images) through the case API; "
        "partner platforms pull signed, verifiable feeds."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "CaseHashStatusEnum": ["active", "withdrawn", "under_review", "disabled"],
        "CaseStateEnum": ["active", "withdrawn"],
    },
}

# Celery: with no broker configured, tasks run in-process (newcomer mode).
CELERY_BROKER_URL = envstr("CELERY_BROKER_URL", "")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Publishing must not hang when the broker is down: the outbox in the database
# and the beat sweep make up for a task that could not be queued.
CELERY_BROKER_TRANSPORT_OPTIONS = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2}
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_TASK_PUBLISH_RETRY = False
# How often the beat sweep queues every delivery that is behind (seconds).
HASHBANK_SWEEP_INTERVAL_S = envint("HASHBANK_SWEEP_INTERVAL_S", 5, minimum=1)
CELERY_BEAT_SCHEDULE = {
    "sweep-deliveries": {
        "task": "exchange.tasks.deliveries_sweep",
        "schedule": float(HASHBANK_SWEEP_INTERVAL_S),
    },
    "sync-peers": {
        "task": "exchange.tasks.peers_sync",
        "schedule": float(envint("HASHBANK_PEER_SYNC_INTERVAL_S", 60, minimum=1)),
    },
}

# Partner credentials and grants are cached per process this long: revoking a
# credential or a grant takes effect everywhere within this many seconds.
HASHBANK_AUTH_CACHE_S = envint("HASHBANK_AUTH_CACHE_S", 5, minimum=0)
# The newest signed checkpoint is kept per process this long (milliseconds): it
# always covers every committed entry within this time. At most 1000.
HASHBANK_CHECKPOINT_CACHE_MS = envint("HASHBANK_CHECKPOINT_CACHE_MS", 250, minimum=0)
if HASHBANK_CHECKPOINT_CACHE_MS > 1000:
    raise ImproperlyConfigured("HASHBANK_CHECKPOINT_CACHE_MS must be at most 1000")

# Push delivery (webhooks).
HASHBANK_WEBHOOK_BATCH = envint("HASHBANK_WEBHOOK_BATCH", 500, minimum=1)
HASHBANK_WEBHOOK_TIMEOUT_S = envint("HASHBANK_WEBHOOK_TIMEOUT_S", 10, minimum=1)
HASHBANK_WEBHOOK_LEASE_S = envint("HASHBANK_WEBHOOK_LEASE_S", 60, minimum=1)
HASHBANK_WEBHOOK_BACKOFF_BASE_S = envint("HASHBANK_WEBHOOK_BACKOFF_BASE_S", 2, minimum=1)
HASHBANK_WEBHOOK_BACKOFF_CAP_S = envint("HASHBANK_WEBHOOK_BACKOFF_CAP_S", 300, minimum=1)
HASHBANK_WEBHOOK_DEGRADED_AFTER = envint("HASHBANK_WEBHOOK_DEGRADED_AFTER", 5, minimum=1)
HASHBANK_WEBHOOK_ALLOW_HTTP = envbool("HASHBANK_WEBHOOK_ALLOW_HTTP", DEBUG)
if HASHBANK_WEBHOOK_LEASE_S <= HASHBANK_WEBHOOK_TIMEOUT_S:
    # A lease that could expire during a request would let two workers send at once.
    raise ImproperlyConfigured(
        "HASHBANK_WEBHOOK_LEASE_S must be larger than HASHBANK_WEBHOOK_TIMEOUT_S"
    )

# Federation: importing peer banks' lists (exchange.federation).
HASHBANK_PEER_ALLOW_HTTP = envbool("HASHBANK_PEER_ALLOW_HTTP", DEBUG)
HASHBANK_PEER_TIMEOUT_S = envint("HASHBANK_PEER_TIMEOUT_S", 30, minimum=1)
# One sync of a peer at a time: a worker holds the peer's lease this long at
# most (an import in progress also keeps the peer's row locked).
HASHBANK_PEER_LEASE_S = envint("HASHBANK_PEER_LEASE_S", 900, minimum=1)
if HASHBANK_PEER_LEASE_S <= HASHBANK_PEER_TIMEOUT_S:
    raise ImproperlyConfigured("HASHBANK_PEER_LEASE_S must be larger than HASHBANK_PEER_TIMEOUT_S")

# Reviewers (reviewers/): a hash is disputed once this many distinct partners
# report it not blocked.
HASHBANK_DISPUTE_NOT_BLOCKED_PARTNERS = envint(
    "HASHBANK_DISPUTE_NOT_BLOCKED_PARTNERS", 2, minimum=1
)

# Email is used once per case to send the case number, and never stored.
EMAIL_BACKEND = envstr("EMAIL_BACKEND", "hashbank.mail.RedactingConsoleBackend")
EMAIL_HOST = envstr("EMAIL_HOST", "localhost")
EMAIL_PORT = envint("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = envstr("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = envsecret("EMAIL_HOST_PASSWORD") or ""
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = envstr("DEFAULT_FROM_EMAIL", "hashbank <no-reply@hashbank.localhost>")

# Argon2id for case PINs. OWASP's minimum is m=19 MiB, t=2, p=1; see README.
HASHBANK_PIN_ARGON2 = {
    "time_cost": envint("HASHBANK_PIN_ARGON2_TIME_COST", 2, minimum=2),
    "memory_cost": envint("HASHBANK_PIN_ARGON2_MEMORY_KIB", 19456, minimum=19456),
    "parallelism": envint("HASHBANK_PIN_ARGON2_PARALLELISM", 1, minimum=1),
}
HASHBANK_PIN_MAX_FAILURES = envint("HASHBANK_PIN_MAX_FAILURES", 10, minimum=1)
HASHBANK_PIN_FAILURE_WINDOW_S = envint("HASHBANK_PIN_FAILURE_WINDOW_S", 3600, minimum=60)

# Per-client-address limits (django-ratelimit syntax "count/period").
RATELIMIT_ENABLE = envbool("RATELIMIT_ENABLE", True)
RATELIMIT_IP_META_KEY = envstr("RATELIMIT_IP_META_KEY", "REMOTE_ADDR")
HASHBANK_RATE_CASE_CREATE = envstr("HASHBANK_RATE_CASE_CREATE", "20/h")
HASHBANK_RATE_CASE_STATUS = envstr("HASHBANK_RATE_CASE_STATUS", "60/h")
HASHBANK_RATE_CASE_WITHDRAW = envstr("HASHBANK_RATE_CASE_WITHDRAW", "30/h")
for _name in (
    "HASHBANK_RATE_CASE_CREATE",
    "HASHBANK_RATE_CASE_STATUS",
    "HASHBANK_RATE_CASE_WITHDRAW",
):
    if not re.fullmatch(r"\d+/\d*[smhd]", globals()[_name]):
        raise ImproperlyConfigured(
            f"{_name} must look like 20/h or 100/10m, got {globals()[_name]!r}"
        )

if not DEBUG:
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SESSION_COOKIE_SECURE = envbool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = envbool("CSRF_COOKIE_SECURE", True)
    SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 0, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
    SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", False)
    # Usually TLS ends at a proxy in front; set this when the app must redirect itself.
    SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", False)
    if envbool("TRUST_X_FORWARDED_PROTO", False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Logs never carry case numbers, PINs, email addresses or client addresses:
# the request logger is kept at WARNING without request bodies, and gunicorn's
# access log is off in docker-compose.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.server": {"level": "WARNING"},
    },
}
