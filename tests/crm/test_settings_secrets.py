"""The settings module refuses to load with published or missing secrets (fail closed).

Each case loads config.settings in a fresh interpreter with an environment built here, so
nothing of the test run's own environment (tests.settings brings test secrets) leaks in.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]
DEV_SECRET = "dev-only-insecure-secret-key-change-me"
LOAD = "from django.conf import settings; print(settings.SECRET_KEY[:4])"
REAL = {"SECRET_KEY": "a-real-secret-of-this-installation-8d2f", "TWILIO_AUTH_TOKEN": "real-tok"}


def _load(**env: str) -> subprocess.CompletedProcess:
    base = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        # A developer's .env never overrides what the process environment says.
        "DEBUG": "false",
        "PRODUCTION": "false",
    }
    return subprocess.run(
        [sys.executable, "-c", LOAD],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _refused(result: subprocess.CompletedProcess, setting: str) -> bool:
    return (
        result.returncode != 0
        and "ImproperlyConfigured" in result.stderr
        and (f"{setting} must be set" in result.stderr)
    )


def test_no_secret_key_without_debug_is_refused():
    assert _refused(_load(TWILIO_AUTH_TOKEN="real-tok"), "SECRET_KEY")


def test_the_published_dev_secret_without_debug_is_refused():
    assert _refused(_load(SECRET_KEY=DEV_SECRET, TWILIO_AUTH_TOKEN="real-tok"), "SECRET_KEY")


def test_the_published_twilio_token_without_debug_is_refused():
    assert _refused(_load(SECRET_KEY=REAL["SECRET_KEY"]), "TWILIO_AUTH_TOKEN")


def test_debug_allows_the_dev_secrets_for_the_demo():
    result = _load(DEBUG="true")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == DEV_SECRET[:4]


def test_real_secrets_load_without_debug():
    result = _load(**REAL)
    assert result.returncode == 0, result.stderr


def test_production_without_field_encryption_keys_is_refused():
    # Not derived from SECRET_KEY: one leaked secret must not give away both.
    assert _refused(_load(PRODUCTION="true", **REAL), "FIELD_ENCRYPTION_KEYS")


def test_production_refuses_debug_and_so_the_dev_secrets():
    key = Fernet.generate_key().decode()
    result = _load(PRODUCTION="true", DEBUG="true", FIELD_ENCRYPTION_KEYS=key, **REAL)
    assert result.returncode != 0 and "DEBUG must be off in production mode" in result.stderr


def test_production_with_its_own_secrets_loads():
    key = Fernet.generate_key().decode()
    result = _load(PRODUCTION="true", FIELD_ENCRYPTION_KEYS=key, **REAL)
    assert result.returncode == 0, result.stderr


def test_a_malformed_field_encryption_key_is_refused():
    result = _load(FIELD_ENCRYPTION_KEYS="not-a-fernet-key", **REAL)
    assert result.returncode != 0 and "not a Fernet key" in result.stderr
