"""A skip for want of a service fails the run where services are required, and only there."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    (tmp_path / "conftest.py").write_text(
        "from tests.service_skips import pytest_runtest_makereport  # noqa: F401\n"
    )
    (tmp_path / "test_inner.py").write_text(
        "import pytest\n\n"
        "@pytest.mark.skipif(True, reason='dovecot not installed')\n"
        "def test_needs_dovecot():\n    pass\n\n"
        "def test_needs_chromium():\n    pytest.skip('Chromium is missing')\n\n"
        "@pytest.mark.skip(reason='not applicable here')\n"
        "def test_unrelated():\n    pass\n"
    )
    base = {k: v for k, v in os.environ.items() if k not in ("CI_REQUIRE_SERVICES", "DATABASE_URL")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:django", "-p", "no:randomly", "-rfs"],
        cwd=tmp_path,
        env={**base, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "env",
    [
        {"CI_REQUIRE_SERVICES": "1"},
        {"DATABASE_URL": "postgres://u@127.0.0.1:5432/db"},
    ],
)
def test_service_skips_fail_where_services_are_required(tmp_path, env):
    result = _run(tmp_path, **env)
    assert result.returncode != 0, result.stdout
    # A skip mark fails in set-up (an error), pytest.skip() in the test (a failure).
    assert "1 failed, 1 skipped, 1 error" in result.stdout, result.stdout
    assert "for want of a service (dovecot not installed)" in result.stdout
    assert "for want of a service (Chromium is missing)" in result.stdout


def test_service_skips_stay_skips_elsewhere(tmp_path):
    result = _run(tmp_path)
    assert result.returncode == 0, result.stdout
    assert "3 skipped" in result.stdout, result.stdout
