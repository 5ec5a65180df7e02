"""Receivers of lower apps' signals (connected in ReshipmentsConfig.ready)."""

from __future__ import annotations

import logging
from typing import Any

from donations_sync.signals import DecisionAnswer
from reshipments import services

logger = logging.getLogger(__name__)


def on_core_decision_answered(sender: Any, *, answers: list[DecisionAnswer], **kwargs: Any) -> None:
    ours = [a for a in answers if getattr(a.message, "kind", "") == "reshipment"]
    if ours:
        services.reshipment_core_answers(answers=ours)
