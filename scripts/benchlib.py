"""Shared plumbing for the benchmark scripts: a fresh PostgreSQL database and a
real gunicorn server on loopback, started and stopped by the script itself."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

import psycopg

from hashbank.keyring import new_keyring

REPO = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")


def fresh_database(name: str) -> str:
    """Drop and create database ``name``; return its URL."""
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{name}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def production_env(database_url: str, var_dir: Path, **extra: str) -> dict[str, str]:
    """Settings as in production (DEBUG off), with throwaway secrets."""
    var_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HASHBANK_", "DJANGO_"))}
    env.update(
        DEBUG="0",
        DATABASE_URL=database_url,
        CACHE_URL=f"{REDIS_URL}/1",
        SECRET_KEY=secrets.token_urlsafe(48),
        HASHBANK_CASE_KEY=secrets.token_urlsafe(48),
        HASHBANK_ENCRYPTION_KEY=secrets.token_urlsafe(48),
        HASHBANK_SIGNING_KEY=new_keyring(),
        HASHBANK_VAR_DIR=str(var_dir),
        BANK_ORIGIN="bench.hashbank.test",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        # Production refuses backends that don't deliver; nothing here sends mail.
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        LOG_LEVEL="WARNING",
        DJANGO_SETTINGS_MODULE="config.settings",
    )
    # Production requires a broker. Nothing is queued unless a partner has a webhook.
    env.setdefault("CELERY_BROKER_URL", f"{REDIS_URL}/2")
    env.update(extra)
    return env


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(REPO / "manage.py"), *args],
        env=env,
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout


@contextlib.contextmanager
def gunicorn(
    env: dict[str, str],
    *,
    port: int,
    workers: int,
    threads: int = 1,
    extra: Sequence[str] = (),
    app: str = "config.wsgi:application",
) -> Iterator[subprocess.Popen[bytes]]:
    """Run gunicorn on 127.0.0.1:port until the block ends (``app``: the WSGI app to serve)."""
    cmd = [
        sys.executable, "-m", "gunicorn", app,
        "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--threads", str(threads),
        "--worker-class", "gthread" if threads > 1 else "sync",
        "--backlog", "2048", "--timeout", "120", "--log-level", "warning", *extra,
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, start_new_session=True)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/healthz")
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_until_up(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"server at {url} did not come up in {timeout}s")
        time.sleep(0.2)


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def run_measured(cmd: Sequence[str], **kwargs: object) -> tuple[int, str, str, float]:
    """Run ``cmd``; return (exit code, stdout, stderr, peak RSS in MiB).

    The peak is read from /proc/<pid>/status (VmHWM) while the process runs:
    getrusage's ru_maxrss would include the memory of the (large) benchmark
    process that forked it, since Linux keeps the high-water mark across exec.
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, **kwargs)  # type: ignore[call-overload]
        peak = 0
        status_path = Path(f"/proc/{proc.pid}/status")
        while proc.poll() is None:
            try:
                for line in status_path.read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
            except OSError:
                pass
            time.sleep(0.02)
        out.seek(0)
        err.seek(0)
        return proc.returncode, out.read(), err.read(), peak / 1024
