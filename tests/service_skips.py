"""Where the services are meant to be there (CI, or a PostgreSQL run), a test skipped for want of
PostgreSQL, Redis, Dovecot or Chromium fails instead: a skip there hides a broken set-up, and the
suite would pass without having tested what it claims.

Required when ``CI_REQUIRE_SERVICES=1`` (set by ``.ci/run``) or when ``DATABASE_URL`` points at
PostgreSQL. Kept free of Django so that it can be loaded on its own.
"""

from __future__ import annotations

import os
import re

import pytest

SERVICES = re.compile(r"postgres|redis|dovecot|chromium|playwright|browser", re.IGNORECASE)


def services_required() -> bool:
    if os.environ.get("CI_REQUIRE_SERVICES") == "1":
        return True
    return os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if not report.skipped or hasattr(report, "wasxfail") or not services_required():
        return
    reason = _skip_reason(report)
    if SERVICES.search(reason):
        report.outcome = "failed"
        report.longrepr = (
            f"{item.nodeid} was skipped for want of a service ({reason}), but this run must have "
            "PostgreSQL, Redis, Dovecot and Chromium (CI_REQUIRE_SERVICES=1 or a PostgreSQL "
            "DATABASE_URL): install or start it (scripts/system-deps.sh, .ci/run)."
        )
