"""The access predicates for templates: ``{% load access %}{% if user|is_supervisor %}``."""

from __future__ import annotations

from typing import Any

from django import template

from crm import access

register = template.Library()


@register.filter
def is_supervisor(user: Any) -> bool:
    return access.is_supervisor(user)


@register.filter
def is_operator_admin(user: Any) -> bool:
    return access.is_operator_admin(user)


@register.filter
def is_operator_staff(user: Any) -> bool:
    return access.is_operator_staff(user)


@register.filter
def can_take_calls(user: Any) -> bool:
    return access.can_take_calls(user)
