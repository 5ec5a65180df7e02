"""The choices a 定型文's actions offer (status, severity), filled in by tickets.

knowledge sits below tickets and cannot import its models; tickets registers its statuses and
severities here in ``TicketsConfig.ready()``, and the 定型文 form reads them when it is built.
"""

from __future__ import annotations

STATUS_CHOICES: list[tuple[int, str]] = []
SEVERITY_CHOICES: list[tuple[str, str]] = []


def register_choices(*, statuses: list[tuple[int, str]], severities: list[tuple[str, str]]) -> None:
    STATUS_CHOICES[:] = statuses
    SEVERITY_CHOICES[:] = severities


def status_label(value: int | None) -> str:
    return dict(STATUS_CHOICES).get(value, "") if value else ""


def severity_label(value: str) -> str:
    return dict(SEVERITY_CHOICES).get(value, "") if value else ""
