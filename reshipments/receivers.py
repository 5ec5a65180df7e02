"""Receivers of lower apps' signals (connected in ReshipmentsConfig.ready)."""

from __future__ import annotations

import logging
from typing import Any

from reshipments import services

logger = logging.getLogger(__name__)


def on_core_decision_answered(
    sender: Any, *, message: Any, answer: str, detail: Any = None, **kwargs: Any
) -> None:
    if getattr(message, "kind", "") != "reshipment":
        return
    services.reshipment_core_answered(message=message, answer=answer, detail=detail)
