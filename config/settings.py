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
from datetime import timedelta
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
# --- Secrets: strength (issue 13) ---
# Django's own deploy check asks for 50 characters; a shorter production key is
# refused outright rather than warned about.
if not DEBUG and len(SECRET_KEY) < 50:
    raise ImproperlyConfigured(
        "SECRET_KEY must be at least 50 characters of random data when DEBUG is off, e.g. "
        "python -c 'import secrets; print(secrets.token_urlsafe(64))'"
    )
# --- end: secrets strength ---
# Keys the HMAC under which case numbers are stored. Separate from SECRET_KEY so
# that rotating Django's session key does not orphan every victim's case.
HASHBANK_CASE_KEY = _required_secret("HASHBANK_CASE_KEY", "dev-case-key")
# Seals secrets the bank must read back (webhook secrets, peer credentials).
HASHBANK_ENCRYPTION_KEY = _required_secret("HASHBANK_ENCRYPTION_KEY", "dev-encryption-key")
if len(HASHBANK_ENCRYPTION_KEY) < 32:
    raise ImproperlyConfigured(
        "HASHBANK_ENCRYPTION_KEY must be at least 32 characters of random data"
    )
# --- Secrets: encryption key rotation (issue 13) ---
# Keys that still open secrets sealed before a rotation, newest first, separated
# by commas or newlines. New secrets are always sealed under HASHBANK_ENCRYPTION_KEY;
# `manage.py encryption_key_rotate` re-seals the old ones, after which these go.
HASHBANK_ENCRYPTION_KEYS_OLD = [
    key.strip()
    for key in re.split(r"[,\n]", envsecret("HASHBANK_ENCRYPTION_KEY_OLD") or "")
    if key.strip()
]
if any(len(key) < 32 for key in HASHBANK_ENCRYPTION_KEYS_OLD):
    raise ImproperlyConfigured(
        "HASHBANK_ENCRYPTION_KEY_OLD: every old key is at least 32 characters (comma-separated)"
    )
# --- end: encryption key rotation ---
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
    # The admin site asks for a TOTP code when HASHBANK_ADMIN_REQUIRE_2FA (config/admin.py).
    "config.apps.HashbankAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "hashbank",
    "cases",
    "exchange",
    "reviewers",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "webapi.guard.ApiRequestGuard",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "config.middleware.AddressOrHeaderLocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Sets no policy by itself: the public pages carry theirs (cases.views.PUBLIC_PAGE_POLICY).
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into its lockout page.
    "axes.middleware.AxesMiddleware",
]
if not DEBUG:
    # Static files are answered before sessions, locale or CSRF can touch them. In
    # development runserver serves them from the apps' folders (django.contrib.staticfiles).
    MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates", BASE_DIR / "config" / "templates"],
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
        # Persistent connections are checked before each request or task reuses them,
        # so the web and worker processes outlive a database restart without an error.
        DATABASES = {
            "default": dj_database_url.parse(
                _database_url, conn_max_age=60, conn_health_checks=True
            )
        }
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
# --- Secrets: the database password as a file (issue 13) ---
# Compose mounts the password PostgreSQL was created with as a Docker secret, so
# it need not be written into DATABASE_URL (and the environment) as well.
_database_password = envsecret("DATABASE_PASSWORD")
if _database_password:
    DATABASES["default"]["PASSWORD"] = _database_password
# --- end: database password ---
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

_cache_url = envstr("CACHE_URL", "")
if _cache_url:
    if not _cache_url.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured(f"CACHE_URL must be a redis:// URL, got {_cache_url!r}")
    # Rate limits (django-ratelimit) count each client's requests here, so every
    # process shares the counts. While Redis is down they count per process
    # (webapi/rate_limits.py); the timeouts bound what a request waits to find out.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": _cache_url,
            "OPTIONS": {"socket_connect_timeout": 0.25, "socket_timeout": 0.5},
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
# whitenoise serves STATIC_ROOT (collectstatic) compressed and under hashed names, and keeps
# the original names too, so /static/cases/pdq.js is a stable address for outside users.
# The Dockerfile turns this on to collect a manifest at build time, when DEBUG is on.
STATIC_HASHED_NAMES = envbool("STATIC_HASHED_NAMES", not DEBUG)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if STATIC_HASHED_NAMES
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
WHITENOISE_KEEP_ONLY_HASHED_FILES = False
# Where the "leave this site quickly" button goes: a busy, unremarkable site.
HASHBANK_QUICK_EXIT_URL = envstr("HASHBANK_QUICK_EXIT_URL", "https://www.google.com/")
if not re.fullmatch(r"https?://[^\s\"'<>]+|about:blank", HASHBANK_QUICK_EXIT_URL):
    raise ImproperlyConfigured(
        f"HASHBANK_QUICK_EXIT_URL must be an http(s) URL, got {HASHBANK_QUICK_EXIT_URL!r}"
    )

# The case API never takes media: bodies are small JSON documents.
HASHBANK_MAX_BODY_BYTES = 64 * 1024
# Django refuses anything larger outright; ApiRequestGuard applies the per-API caps.
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 0

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_PARSER_CLASSES": ["webapi.parsers.StrictJSONParser"],
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

# Celery: with no broker configured, tasks run in-process, for development
# only: in production a slow partner would hold up the victim's request.
CELERY_BROKER_URL = envstr("CELERY_BROKER_URL", "")
if not CELERY_BROKER_URL and not DEBUG:
    raise ImproperlyConfigured(
        "CELERY_BROKER_URL (redis://...) must be set when DEBUG is off: without a broker, "
        "webhooks would be sent inside the victims' requests"
    )
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Requests never wait for the broker: exchange/push/tasks.py queues from a thread
# of its own, and the outbox in the database and the beat sweep make up for a
# task that could not be queued. The socket timeouts keep that thread (and
# beat) from hanging forever on a broker that stopped answering without closing
# the connection.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "socket_connect_timeout": 2,
    "socket_timeout": 5,
}
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

# How far each partner got in a list (pulled or pushed), kept per process this long
# for the partner counts a victim's status shows: they may lag by this many seconds.
HASHBANK_PARTNER_POSITIONS_CACHE_S = envint("HASHBANK_PARTNER_POSITIONS_CACHE_S", 5, minimum=0)

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

# Webhooks and peers may be sent to only at public addresses, checked when the
# URL is set and on every connection (exchange/client/addresses.py). On, this
# allows loopback and private ones (never cloud metadata): development, tests.
HASHBANK_WEBHOOK_ALLOW_PRIVATE = envbool("HASHBANK_WEBHOOK_ALLOW_PRIVATE", False)

# Federation: importing peer banks' lists (exchange.federation).
HASHBANK_PEER_ALLOW_HTTP = envbool("HASHBANK_PEER_ALLOW_HTTP", DEBUG)
HASHBANK_PEER_TIMEOUT_S = envint("HASHBANK_PEER_TIMEOUT_S", 30, minimum=1)
# One sync of a peer at a time: a worker holds the peer's lease this long at
# most (an import in progress also keeps the peer's row locked).
HASHBANK_PEER_LEASE_S = envint("HASHBANK_PEER_LEASE_S", 900, minimum=1)
if HASHBANK_PEER_LEASE_S <= HASHBANK_PEER_TIMEOUT_S:
    raise ImproperlyConfigured("HASHBANK_PEER_LEASE_S must be larger than HASHBANK_PEER_TIMEOUT_S")
# One sync imports at most this many entries and stops starting new work after
# this many seconds; the next beat continues where it stopped. Each batch of
# the import is its own short transaction, so a case on the same list waits at
# most one batch (HASHBANK_PEER_IMPORT_BATCH entries).
HASHBANK_PEER_SYNC_MAX_ENTRIES = envint("HASHBANK_PEER_SYNC_MAX_ENTRIES", 200_000, minimum=1)
HASHBANK_PEER_SYNC_MAX_S = envint("HASHBANK_PEER_SYNC_MAX_S", 300, minimum=1)
HASHBANK_PEER_IMPORT_BATCH = envint("HASHBANK_PEER_IMPORT_BATCH", 1000, minimum=1)
if HASHBANK_PEER_SYNC_MAX_S + HASHBANK_PEER_TIMEOUT_S >= HASHBANK_PEER_LEASE_S:
    # The last request may start just before the deadline: the lease must outlast it.
    raise ImproperlyConfigured(
        "HASHBANK_PEER_SYNC_MAX_S + HASHBANK_PEER_TIMEOUT_S must be less than HASHBANK_PEER_LEASE_S"
    )

# Reviewers (reviewers/): a hash is disputed once this many distinct partners
# report it not blocked.
HASHBANK_DISPUTE_NOT_BLOCKED_PARTNERS = envint(
    "HASHBANK_DISPUTE_NOT_BLOCKED_PARTNERS", 2, minimum=1
)

# --- Email (issue 13, finding 8) ---
# Email is used once per case to send the case number, and never stored. In
# development the default prints headers only (hashbank/mail.py); in production
# the backend must deliver, because a backend that prints, writes or drops
# messages would put case numbers into logs or lose them silently.
_EMAIL_BACKENDS_REFUSED_IN_PRODUCTION = (
    "django.core.mail.backends.console.EmailBackend",
    "django.core.mail.backends.filebased.EmailBackend",
    "django.core.mail.backends.locmem.EmailBackend",
    "django.core.mail.backends.dummy.EmailBackend",
    "hashbank.mail.RedactingConsoleBackend",
)
EMAIL_BACKEND = envstr("EMAIL_BACKEND", "hashbank.mail.RedactingConsoleBackend" if DEBUG else "")
if not DEBUG:
    from django.utils.module_loading import import_string

    if not EMAIL_BACKEND:
        raise ImproperlyConfigured(
            "EMAIL_BACKEND must be set when DEBUG is off, to a backend that delivers mail, "
            "e.g. django.core.mail.backends.smtp.EmailBackend"
        )
    try:
        _email_backend_class = import_string(EMAIL_BACKEND)
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"EMAIL_BACKEND={EMAIL_BACKEND!r} cannot be imported: {exc}"
        ) from None
    # Subclasses count too: a renamed console backend still prints.
    _refused = [name for name in _EMAIL_BACKENDS_REFUSED_IN_PRODUCTION
                if issubclass(_email_backend_class, import_string(name))]  # fmt: skip
    if _refused:
        raise ImproperlyConfigured(
            f"EMAIL_BACKEND={EMAIL_BACKEND!r} does not deliver mail ({_refused[0]}): it would "
            "print, store or drop case numbers. "
            "Use e.g. django.core.mail.backends.smtp.EmailBackend"
        )
EMAIL_HOST = envstr("EMAIL_HOST", "localhost")
EMAIL_PORT = envint("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = envstr("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = envsecret("EMAIL_HOST_PASSWORD") or ""
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = envstr("DEFAULT_FROM_EMAIL", "hashbank <no-reply@hashbank.localhost>")
# --- end: email ---

# --- Admin (issue 13, finding 9) ---
# Where the admin lives. Moving it off /admin/ keeps it out of most scanners; it
# is one path segment or more, each lower-case letters, digits, '.', '_' or '-',
# ending in '/', and it may not shadow the APIs.
HASHBANK_ADMIN_PATH = envstr("HASHBANK_ADMIN_PATH", "admin/")
_ADMIN_PATH_TAKEN = {"api", "exchange", "stopncii", "healthz", "static"}
if (
    not re.fullmatch(r"(?:[a-z0-9][a-z0-9._-]{0,62}/){1,4}", HASHBANK_ADMIN_PATH)
    or HASHBANK_ADMIN_PATH.split("/")[0] in _ADMIN_PATH_TAKEN
    or ".." in HASHBANK_ADMIN_PATH
):
    raise ImproperlyConfigured(
        "HASHBANK_ADMIN_PATH must be a relative path ending in '/', of lower-case letters, "
        "digits, '.', '_' and '-', not starting with api/, exchange/, stopncii/, healthz or "
        f"static/; got {HASHBANK_ADMIN_PATH!r}"
    )
# Staff sign in with a password and a TOTP code (django-otp); enrol a device with
# `manage.py admin_totp_enrol USERNAME`. On by default in production.
HASHBANK_ADMIN_REQUIRE_2FA = envbool("HASHBANK_ADMIN_REQUIRE_2FA", not DEBUG)
# The name authenticator apps show next to the code.
OTP_TOTP_ISSUER = envstr("HASHBANK_ADMIN_TOTP_ISSUER", BANK_ORIGIN)
# Failed admin sign-ins are throttled by django-axes, counted in the database
# (so every process shares them, on PostgreSQL and SQLite alike) per username
# and client address together: from one address, a username is locked after
# HASHBANK_ADMIN_LOGIN_FAILURES failures for HASHBANK_ADMIN_LOCKOUT_MINUTES.
# `manage.py axes_reset_username NAME` lifts a lockout early.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_FAILURE_LIMIT = envint("HASHBANK_ADMIN_LOGIN_FAILURES", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=envint("HASHBANK_ADMIN_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "config.admin.lockout_page"
# The same client address as the rate limits, behind HASHBANK_TRUSTED_PROXIES proxies.
AXES_CLIENT_IP_CALLABLE = "webapi.addresses.client_address"
# The attempts are in admin (Axes, Access attempts); the log need not repeat
# the usernames people mistype (sometimes their password) and their addresses.
AXES_VERBOSE = False
# --- end: admin ---

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
# How many reverse proxies in front of the server append to X-Forwarded-For;
# webapi.addresses reads the client address from there (0: REMOTE_ADDR only).
HASHBANK_TRUSTED_PROXIES = envint("HASHBANK_TRUSTED_PROXIES", 0, minimum=0)
if "RATELIMIT_IP_META_KEY" in os.environ:
    # A header named here was trusted whole, so a client could forge its address.
    raise ImproperlyConfigured(
        "RATELIMIT_IP_META_KEY is no longer read: set HASHBANK_TRUSTED_PROXIES to the number "
        "of proxies in front of the server instead"
    )
RATELIMIT_IP_META_KEY = "webapi.addresses.client_address"
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
    # --- HSTS on by default (issue 13); SECURE_HSTS_SECONDS=0 turns it off ---
    SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 31536000, minimum=0)
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
