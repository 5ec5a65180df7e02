"""Ticket fixtures: tickets are opened the way the product opens them, through the service."""

from __future__ import annotations

import pytest

from tickets import services
from tickets.models import Channel, Inquiry


@pytest.fixture
def open_inquiry(agent_a, city_a):
    def _open(**kwargs) -> Inquiry:
        values = {
            "actor": agent_a,
            "municipality": city_a,
            "channel": Channel.PHONE,
            "title": "返礼品が届かない",
            "description": "12月1日に申し込んだいくらがまだ届きません。",
        }
        values.update(kwargs)
        return services.inquiry_open(**values)

    return _open
