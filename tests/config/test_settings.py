"""Settings refuse to start on a missing or malformed production setting.

Each test starts Django in a fresh process with a controlled environment, as a
deployment would, and reads its exit status and stderr.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

BASE_DIR = Path(__file__).resolve().parents[2]
SETTINGS_SOURCE = (BASE_DIR / "config" / "settings.py").read_text(encoding="utf-8")

# Every upper-case string literal in settings.py that may name a variable (and
# its *_FILE twin): new settings are stripped from the inherited environment
# without editing this list.
_SETTING_NAMES = set(re.findall(r'"([A-Z][A-Z0-9_]{2,})"', SETTINGS_SOURCE))
_STRIPPED = (
    _SETTING_NAMES
    | {f"{name}_FILE" for name in _SETTING_NAMES}
    | {"DEBUG", "DATABASE_URL", "CACHE_URL", "DJANGO_SETTINGS_MODULE", "DJANGO_CONFIGURATION"}
)
_STRIPPED_PREFIXES = ("HASHBANK_", "SECRET_KEY", "EMAIL_", "CELERY_", "SECURE_", "RATELIMIT_")


def base_env(var_dir: Path) -> dict[str, str]:
    """The inherited environment without any setting, pointed at a private var dir."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in _STRIPPED and not key.startswith(_STRIPPED_PREFIXES)
    }
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    env["HASHBANK_VAR_DIR"] = str(var_dir)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def production_settings(secrets_dir: Path | None = None) -> dict[str, str]:
    """Every setting a production start needs (DEBUG off).

    With ``secrets_dir``, secrets are given as ``*_FILE`` paths to files written
    there, as Docker and Kubernetes mount them. Add new required settings here.
    """
    secrets = {
        "SECRET_KEY": "k3Jd9-production-secret-key-" + "Zx7qP2mW" * 6,
        "HASHBANK_CASE_KEY": "case-key-" + "R8tY2uI9oP0aS3dF" * 3,
        "HASHBANK_ENCRYPTION_KEY": "encryption-key-" + "Q2w3E4r5T6y7U8i9" * 3,
        "EMAIL_HOST_PASSWORD": "smtp password",
        # A fixed Ed25519 seed, test-only: "<status> <base64 32-byte seed>".
        "HASHBANK_SIGNING_KEY": "active " + base64.b64encode(b"\x07" * 32).decode(),
    }
    values = {
        "ALLOWED_HOSTS": "hashbank.example.org",
        "CSRF_TRUSTED_ORIGINS": "https://hashbank.example.org",
        "BANK_ORIGIN": "hashbank.example.org",
        "CACHE_URL": "redis://127.0.0.1:6379/0",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/1",
        "DATABASE_URL": "postgres://hashbank:pw@db.example.org:5432/hashbank",
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "smtp.example.org",
        "EMAIL_PORT": "587",
        "EMAIL_USE_TLS": "true",
        "SECURE_HSTS_SECONDS": "31536000",
        "TRUST_X_FORWARDED_PROTO": "1",
    }
    if secrets_dir is None:
        return {**values, **secrets}
    secrets_dir.mkdir(parents=True, exist_ok=True)
    for name, secret in secrets.items():
        path = secrets_dir / name.lower()
        path.write_text(secret + "\n", encoding="utf-8")  # mounted files end in a newline
        path.chmod(0o600)
        values[f"{name}_FILE"] = str(path)
    return values


def production_env(tmp_path: Path, **changes: str | None) -> dict[str, str]:
    """A full production environment with ``changes`` applied (None removes a variable)."""
    env = {**base_env(tmp_path / "var"), **production_settings()}
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``manage.py args`` or, without args, just ``django.setup()``, in a new process."""
    command = (
        [sys.executable, "manage.py", *args]
        if args
        else [sys.executable, "-c", "import django; django.setup()"]
    )
    return subprocess.run(
        command, cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120, umask=0
    )


def loaded_settings(env: dict[str, str], *names: str) -> dict[str, Any]:
    code = (
        "import django, json; django.setup(); from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n) for n in {list(names)!r}}}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def assert_refused_naming(result: subprocess.CompletedProcess[str], name: str) -> None:
    assert result.returncode != 0, result.stdout
    reasons = [
        line
        for line in result.stderr.splitlines()
        if line.startswith("django.core.exceptions.ImproperlyConfigured:")
    ]
    assert reasons, result.stderr[-2000:]
    assert name in reasons[-1], reasons[-1]


REFUSED = [
    pytest.param({"SECRET_KEY": None}, "SECRET_KEY", id="no-secret-key"),
    pytest.param({"SECRET_KEY": None, "DEBUG": "0"}, "SECRET_KEY", id="no-secret-key-debug-0"),
    pytest.param({"SECRET_KEY": "   "}, "SECRET_KEY", id="blank-secret-key"),
    pytest.param({"HASHBANK_CASE_KEY": None}, "HASHBANK_CASE_KEY", id="no-case-key"),
    pytest.param({"HASHBANK_CASE_KEY": "short"}, "HASHBANK_CASE_KEY", id="short-case-key"),
    pytest.param({"HASHBANK_SIGNING_KEY": None}, "HASHBANK_SIGNING_KEY", id="no-signing-key"),
    pytest.param(
        {"HASHBANK_SIGNING_KEY": "active not-a-key"},
        "HASHBANK_SIGNING_KEY",
        id="malformed-signing-key",
    ),
    pytest.param({"ALLOWED_HOSTS": None}, "ALLOWED_HOSTS", id="no-allowed-hosts"),
    pytest.param({"ALLOWED_HOSTS": ""}, "ALLOWED_HOSTS", id="empty-allowed-hosts"),
    pytest.param({"ALLOWED_HOSTS": " , "}, "ALLOWED_HOSTS", id="blank-allowed-hosts"),
    pytest.param({"BANK_ORIGIN": None}, "BANK_ORIGIN", id="no-bank-origin"),
    pytest.param(
        {"BANK_ORIGIN": "https://hashbank.example.org"}, "BANK_ORIGIN", id="bank-origin-with-scheme"
    ),
    pytest.param(
        {"BANK_ORIGIN": "hash+bank.example.org"}, "BANK_ORIGIN", id="bank-origin-with-plus"
    ),
    pytest.param(
        {"BANK_ORIGIN": "hash bank.example.org"}, "BANK_ORIGIN", id="bank-origin-with-space"
    ),
    pytest.param({"CACHE_URL": None}, "CACHE_URL", id="no-cache-url"),
    # Without a broker, tasks would run inside requests: a slow partner would stall victims.
    pytest.param({"CELERY_BROKER_URL": None}, "CELERY_BROKER_URL", id="no-broker"),
    pytest.param({"CELERY_BROKER_URL": ""}, "CELERY_BROKER_URL", id="empty-broker"),
    pytest.param({"DATABASE_URL": None}, "DATABASE_URL", id="no-database-url"),
    pytest.param(
        {"CACHE_URL": "memcached://127.0.0.1:11211"}, "CACHE_URL", id="cache-url-not-redis"
    ),
    pytest.param({"DEBUG": "maybe"}, "DEBUG", id="malformed-debug"),
    pytest.param({"EMAIL_PORT": "smtp"}, "EMAIL_PORT", id="malformed-email-port"),
    pytest.param({"EMAIL_PORT": "0"}, "EMAIL_PORT", id="email-port-zero"),
    pytest.param({"EMAIL_USE_TLS": "sometimes"}, "EMAIL_USE_TLS", id="malformed-email-tls"),
    pytest.param(
        {"HASHBANK_RATE_CASE_CREATE": "lots"}, "HASHBANK_RATE_CASE_CREATE", id="rate-lots"
    ),
    pytest.param(
        {"HASHBANK_RATE_CASE_STATUS": "60/hour"}, "HASHBANK_RATE_CASE_STATUS", id="rate-spelt-out"
    ),
    pytest.param(
        {"HASHBANK_RATE_CASE_WITHDRAW": ""}, "HASHBANK_RATE_CASE_WITHDRAW", id="rate-empty"
    ),
    pytest.param(
        {"HASHBANK_PIN_ARGON2_MEMORY_KIB": "19455"},
        "HASHBANK_PIN_ARGON2_MEMORY_KIB",
        id="argon2-memory-below-owasp",
    ),
    pytest.param(
        {"HASHBANK_PIN_ARGON2_TIME_COST": "1"},
        "HASHBANK_PIN_ARGON2_TIME_COST",
        id="argon2-time-below-owasp",
    ),
    pytest.param(
        {"HASHBANK_PIN_ARGON2_MEMORY_KIB": "lots"},
        "HASHBANK_PIN_ARGON2_MEMORY_KIB",
        id="argon2-memory-malformed",
    ),
    pytest.param({"DATABASE_URL": "notaurl"}, "DATABASE_URL", id="malformed-database-url"),
    pytest.param(
        {"HASHBANK_TRUSTED_PROXIES": "-1"}, "HASHBANK_TRUSTED_PROXIES", id="negative-proxies"
    ),
    pytest.param(
        {"HASHBANK_TRUSTED_PROXIES": "10.0.0.1"},
        "HASHBANK_TRUSTED_PROXIES",
        id="proxy-address-for-a-count",
    ),
    pytest.param(
        {"RATELIMIT_IP_META_KEY": "HTTP_X_FORWARDED_FOR"},
        "RATELIMIT_IP_META_KEY",
        id="forgeable-address-header",
    ),
    pytest.param(
        {"HASHBANK_PEER_SYNC_MAX_S": "900"}, "HASHBANK_PEER_SYNC_MAX_S", id="sync-outlasts-lease"
    ),
    pytest.param(
        {"HASHBANK_PEER_SYNC_MAX_ENTRIES": "0"},
        "HASHBANK_PEER_SYNC_MAX_ENTRIES",
        id="sync-max-entries-zero",
    ),
    pytest.param(
        {"HASHBANK_PEER_IMPORT_BATCH": "many"}, "HASHBANK_PEER_IMPORT_BATCH", id="batch-malformed"
    ),
    pytest.param(
        {"HASHBANK_WEBHOOK_ALLOW_PRIVATE": "perhaps"},
        "HASHBANK_WEBHOOK_ALLOW_PRIVATE",
        id="allow-private-malformed",
    ),
]


@pytest.mark.parametrize(("changes", "name"), REFUSED)
def test_it_refuses_to_start_naming_the_bad_setting(
    tmp_path: Path, changes: dict[str, str | None], name: str
) -> None:
    assert_refused_naming(run(production_env(tmp_path, **changes)), name)


def test_it_refuses_secret_key_given_both_directly_and_as_a_file(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret_key"
    secret_file.write_text("from-a-file-" + "x" * 50, encoding="utf-8")

    result = run(production_env(tmp_path, SECRET_KEY_FILE=str(secret_file)))

    assert_refused_naming(result, "SECRET_KEY_FILE")


@pytest.mark.parametrize("name", ["SECRET_KEY", "HASHBANK_CASE_KEY", "HASHBANK_SIGNING_KEY"])
def test_it_refuses_a_secret_file_that_does_not_exist(tmp_path: Path, name: str) -> None:
    missing = tmp_path / "no-such-secret"

    result = run(production_env(tmp_path, **{name: None, f"{name}_FILE": str(missing)}))

    assert_refused_naming(result, f"{name}_FILE")


def test_it_refuses_malformed_values_in_development_too(tmp_path: Path) -> None:
    env = {**base_env(tmp_path / "var"), "DEBUG": "1", "HASHBANK_RATE_CASE_CREATE": "lots"}

    assert_refused_naming(run(env), "HASHBANK_RATE_CASE_CREATE")


@pytest.mark.parametrize("as_files", [False, True], ids=["values", "files"])
def test_it_passes_the_deploy_check_with_every_production_setting(
    tmp_path: Path, as_files: bool
) -> None:
    env = {
        **base_env(tmp_path / "var"),
        **production_settings(tmp_path / "secrets" if as_files else None),
    }

    result = run(env, "check", "--deploy")

    assert result.returncode == 0, result.stderr[-3000:]
    assert "System check identified" in result.stdout + result.stderr
    # Production never falls back to generated development secrets (or SQLite).
    var = tmp_path / "var"
    assert not var.exists() or not [p for p in var.iterdir() if p.name in DEV_SECRETS]
    assert not (var / "db.sqlite3").exists()


def test_it_reads_secrets_from_files_without_their_trailing_newline(tmp_path: Path) -> None:
    env = {**base_env(tmp_path / "var"), **production_settings(tmp_path / "secrets")}

    loaded = loaded_settings(
        env,
        "SECRET_KEY",
        "HASHBANK_CASE_KEY",
        "HASHBANK_SIGNING_KEYS_TEXT",
        "EMAIL_HOST_PASSWORD",
        "DEBUG",
    )

    assert loaded == {
        "SECRET_KEY": (tmp_path / "secrets" / "secret_key").read_text("utf-8").rstrip("\n"),
        "HASHBANK_CASE_KEY": (tmp_path / "secrets" / "hashbank_case_key")
        .read_text("utf-8")
        .rstrip("\n"),
        "HASHBANK_SIGNING_KEYS_TEXT": production_settings()["HASHBANK_SIGNING_KEY"],
        "EMAIL_HOST_PASSWORD": "smtp password",
        "DEBUG": False,
    }


DEV_SECRETS = {"dev-secret-key", "dev-case-key", "signing.key"}


def test_it_starts_in_development_with_only_debug_and_generates_private_secrets(
    tmp_path: Path,
) -> None:
    var_dir = tmp_path / "var"
    env = {**base_env(var_dir), "DEBUG": "1"}

    result = run(env, "check")

    assert result.returncode == 0, result.stderr[-3000:]
    generated = {p.name: p for p in var_dir.iterdir() if not p.name.startswith("db.sqlite3")}
    assert DEV_SECRETS <= generated.keys()
    for path in generated.values():
        # Owner-only even though the process ran with umask 0.
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert len(path.read_text("utf-8").strip()) >= 32, path

    names = ("SECRET_KEY", "HASHBANK_CASE_KEY", "HASHBANK_SIGNING_KEYS_TEXT")
    first = loaded_settings(env, *names)
    second = loaded_settings(env, *names)
    assert first == second, "development secrets must survive a restart"
    assert len(set(first.values())) == len(names)
    assert first["SECRET_KEY"] == (var_dir / "dev-secret-key").read_text("utf-8").strip()
    assert first["HASHBANK_CASE_KEY"] == (var_dir / "dev-case-key").read_text("utf-8").strip()


def test_rate_limits_count_in_djangos_redis_cache_or_without_cache_url_in_memory(
    tmp_path: Path,
) -> None:
    development = {**base_env(tmp_path / "var"), "DEBUG": "1"}
    with_redis = {**development, "CACHE_URL": "redis://127.0.0.1:6379/0"}

    cache = loaded_settings(with_redis, "CACHES")["CACHES"]["default"]
    assert cache["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
    assert cache["LOCATION"] == "redis://127.0.0.1:6379/0"
    # A Redis that is down or not answering is found out quickly (webapi/rate_limits.py).
    assert cache["OPTIONS"]["socket_connect_timeout"] <= 0.5
    assert cache["OPTIONS"]["socket_timeout"] <= 0.5
    assert loaded_settings(development, "CACHES")["CACHES"] == {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    }


# --- Operators and secrets (issue 13: findings 8, 9, 13) ---

NOT_DELIVERING = [
    "django.core.mail.backends.console.EmailBackend",
    "django.core.mail.backends.filebased.EmailBackend",
    "django.core.mail.backends.locmem.EmailBackend",
    "django.core.mail.backends.dummy.EmailBackend",
    "hashbank.mail.RedactingConsoleBackend",
]


@pytest.mark.parametrize("backend", [None, "", *NOT_DELIVERING, "no.such.Backend"])
def test_production_refuses_an_email_backend_that_does_not_deliver(
    tmp_path: Path, backend: str | None
) -> None:
    assert_refused_naming(run(production_env(tmp_path, EMAIL_BACKEND=backend)), "EMAIL_BACKEND")


def test_production_refuses_a_subclass_of_the_console_backend(tmp_path: Path) -> None:
    (tmp_path / "printing_mail.py").write_text(
        "from django.core.mail.backends.console import EmailBackend\n\n\n"
        "class Printing(EmailBackend):\n    pass\n",
        encoding="utf-8",
    )
    env = production_env(tmp_path, EMAIL_BACKEND="printing_mail.Printing", PYTHONPATH=str(tmp_path))

    assert_refused_naming(run(env), "EMAIL_BACKEND")


def test_production_refuses_a_secret_key_shorter_than_50_characters(tmp_path: Path) -> None:
    assert_refused_naming(run(production_env(tmp_path, SECRET_KEY="k" * 49)), "SECRET_KEY")
    assert run(production_env(tmp_path, SECRET_KEY="k" * 50)).returncode == 0


@pytest.mark.parametrize(
    "path", ["", "/admin/", "admin", "Admin/", "api/", "exchange/x/", "a/../b/", "a b/", "a//"]
)
def test_it_refuses_an_admin_path_that_is_malformed_or_shadows_an_api(
    tmp_path: Path, path: str
) -> None:
    assert_refused_naming(
        run(production_env(tmp_path, HASHBANK_ADMIN_PATH=path)), "HASHBANK_ADMIN_PATH"
    )


def test_the_admin_moves_to_hashbank_admin_path(tmp_path: Path) -> None:
    env = {**base_env(tmp_path / "var"), "DEBUG": "1", "HASHBANK_ADMIN_PATH": "ops/console/"}
    code = (
        "import django; django.setup(); from django.urls import reverse, resolve, Resolver404\n"
        "print(reverse('admin:index'), reverse('admin:hashbank_hash_changelist'))\n"
        "try:\n    resolve('/admin/')\nexcept Resolver404:\n    print('no /admin/')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=BASE_DIR, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == [
        "/ops/console/",
        "/ops/console/hashbank/hash/",
        "no",
        "/admin/",
    ]


def test_two_factor_admin_is_required_in_production_by_default_and_not_in_development(
    tmp_path: Path,
) -> None:
    development = {**base_env(tmp_path / "var"), "DEBUG": "1"}
    assert loaded_settings(production_env(tmp_path), "HASHBANK_ADMIN_REQUIRE_2FA") == {
        "HASHBANK_ADMIN_REQUIRE_2FA": True
    }
    assert loaded_settings(development, "HASHBANK_ADMIN_REQUIRE_2FA") == {
        "HASHBANK_ADMIN_REQUIRE_2FA": False
    }


def test_hsts_is_on_for_a_year_by_default_in_production_and_can_be_turned_off(
    tmp_path: Path,
) -> None:
    default = production_env(tmp_path, SECURE_HSTS_SECONDS=None)
    off = production_env(tmp_path, SECURE_HSTS_SECONDS="0")

    assert loaded_settings(default, "SECURE_HSTS_SECONDS") == {"SECURE_HSTS_SECONDS": 31536000}
    assert loaded_settings(off, "SECURE_HSTS_SECONDS") == {"SECURE_HSTS_SECONDS": 0}


def test_the_database_password_can_come_from_a_file(tmp_path: Path) -> None:
    password = tmp_path / "postgres_password"
    password.write_text("from a file\n", encoding="utf-8")
    env = production_env(
        tmp_path,
        DATABASE_URL="postgres://hashbank@db.example.org:5432/hashbank",
        DATABASE_PASSWORD_FILE=str(password),
    )

    databases = loaded_settings(env, "DATABASES")["DATABASES"]

    assert databases["default"]["PASSWORD"] == "from a file"
    assert databases["default"]["USER"] == "hashbank"


def test_old_encryption_keys_are_read_as_a_list_and_each_must_be_long(tmp_path: Path) -> None:
    old = ["old-key-one-" + "a" * 32, "old-key-two-" + "b" * 32]
    env = production_env(tmp_path, HASHBANK_ENCRYPTION_KEY_OLD=" , ".join(old))

    assert loaded_settings(env, "HASHBANK_ENCRYPTION_KEYS_OLD") == {
        "HASHBANK_ENCRYPTION_KEYS_OLD": old
    }
    assert_refused_naming(
        run(production_env(tmp_path, HASHBANK_ENCRYPTION_KEY_OLD=f"{old[0]},short")),
        "HASHBANK_ENCRYPTION_KEY_OLD",
    )


SECRET_NAMES = {
    "SECRET_KEY",
    "HASHBANK_CASE_KEY",
    "HASHBANK_ENCRYPTION_KEY",
    "HASHBANK_SIGNING_KEY",
    "EMAIL_HOST_PASSWORD",
    "DATABASE_PASSWORD",
    "POSTGRES_PASSWORD",
}


@pytest.mark.skipif(not shutil.which("docker-compose"), reason="needs docker-compose")
def test_compose_gives_every_secret_as_a_file_and_none_in_the_environment(tmp_path: Path) -> None:
    # Only the public settings are in the environment: compose must not need a secret there.
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "BANK_ORIGIN": "bank.example.org",
        "ALLOWED_HOSTS": "bank.example.org",
    }
    result = subprocess.run(
        ["docker-compose", "-f", "docker-compose.yml", "config"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)

    for name, service in config["services"].items():
        environment = service.get("environment") or {}
        assert not SECRET_NAMES & set(environment), (name, environment)
        for key, value in environment.items():
            assert "password" not in str(value).lower() or key.endswith("_FILE"), (name, key)
            if key.endswith("_FILE"):
                assert str(value).startswith("/run/secrets/"), (name, key, value)
                mounted = {s["source"] if isinstance(s, dict) else s for s in service["secrets"]}
                assert Path(value).name in mounted, (name, key)
        if "DATABASE_URL" in environment:
            assert urlsplit(environment["DATABASE_URL"]).password is None, name
    assert {name for name, spec in config["secrets"].items() if "file" in spec} >= {
        "secret_key",
        "hashbank_case_key",
        "hashbank_encryption_key",
        "hashbank_signing_key",
        "postgres_password",
    }


def test_tasks_run_in_process_only_in_development_without_a_broker(tmp_path: Path) -> None:
    name = "CELERY_TASK_ALWAYS_EAGER"
    assert loaded_settings(production_env(tmp_path), name) == {name: False}
    development = {**base_env(tmp_path / "var"), "DEBUG": "1"}
    assert loaded_settings(development, name) == {name: True}
    with_broker = {**development, "CELERY_BROKER_URL": "redis://127.0.0.1:6379/1"}
    assert loaded_settings(with_broker, name) == {name: False}
