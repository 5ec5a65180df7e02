"""Production refuses to start with a core feed on and its secret missing (and only then).

Each case loads config.settings in a fresh interpreter with an environment built here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]
LOAD = "from django.conf import settings; print(settings.CELERY_BEAT_SCHEDULE['core-feed-pull'])"


def _load(**env: str) -> subprocess.CompletedProcess:
    base = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "false",
        "PRODUCTION": "true",
        "SECRET_KEY": "a-real-secret-of-this-installation-8d2f",
        "TWILIO_AUTH_TOKEN": "real-tok",
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    }
    return subprocess.run(
        [sys.executable, "-c", LOAD],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_without_a_feed_needs_no_core_secrets():
    result = _load()
    assert result.returncode == 0, result.stderr
    assert "donations_sync.feed_tasks.core_feed_pull" in result.stdout


def test_pulling_in_production_needs_the_api_token():
    result = _load(CORE_API_URL="https://core.example.jp/api/v1")
    assert result.returncode != 0
    assert "CORE_API_TOKEN must be set" in result.stderr
    assert _load(CORE_API_URL="https://core.example.jp/api/v1", CORE_API_TOKEN="t").returncode == 0


def test_receiving_pushes_in_production_needs_a_long_secret():
    for secret in ("", "short"):
        result = _load(CORE_FEED_PUSH="true", CORE_FEED_SECRET=secret)
        assert result.returncode != 0
        assert "CORE_FEED_SECRET must be set" in result.stderr
    assert _load(CORE_FEED_PUSH="true", CORE_FEED_SECRET="s" * 32).returncode == 0
