"""Every model that holds a municipality's data is exported and deleted with it, or declared.

The hand-over walks Django's app registry, so a model added later is handled without code
changes; this test fails for a model that names a municipality in a way the walk cannot follow
(a code or id column without a foreign key, say) unless it is declared in ``registry.SHARED``.
"""

from __future__ import annotations

from django.apps import apps

from administration.handover import registry
from crm.access import MunicipalityScopedQuerySet


def _mentions_municipality(model) -> bool:
    return any(
        "municipal" in f.name or "municipal" in (f.column or "")
        for f in model._meta.concrete_fields
    )


def test_every_model_with_municipality_data_is_handled():
    owned = {t.model for t in registry.owned_tables()}
    linked = {link.model for link in registry.links()}
    unhandled = []
    for model in apps.get_models(include_auto_created=True):
        if model in owned or model in linked or model._meta.label in registry.SHARED:
            continue
        scoped = isinstance(model._default_manager.all(), MunicipalityScopedQuerySet)
        if _mentions_municipality(model) or scoped:
            unhandled.append(model._meta.label)
    assert unhandled == [], (
        "these models name a municipality but neither the hand-over export/deletion nor "
        f"registry.SHARED covers them: {unhandled}"
    )


def test_known_tables_are_found_with_their_chains():
    tables = {t.label: t for t in registry.owned_tables()}
    assert tables["crm.Donor"].lookup == "municipality_id"
    assert tables["donations_sync.ImportRejection"].lookup == "run__municipality_id"
    assert tables["telephony.CallEvent"].lookup == "call__municipality_id"
    # helpdesk's tables hang off the municipality's Queue (declared by tickets.handover).
    assert tables["helpdesk.Ticket"].root == "helpdesk.Queue"
    assert tables["helpdesk.FollowUpAttachment"].lookup == "followup__ticket__queue_id"
    assert "tickets.Inquiry_shipments" in tables and "crm.User_municipalities" in tables
    # Operator-wide and per-user tables are not a municipality's.
    for label in ("crm.Carrier", "crm.User", "tickets.Category", "telephony.AgentPresence"):
        assert label not in tables
    assert {link.label for link in registry.links()} >= {"telephony.AgentPresence.current_call"}


def test_deletion_order_puts_referring_rows_first():
    order = [t.label for t in registry.deletion_order()]
    assert order.index("crm.DonorPhone") < order.index("crm.Donor")
    assert order.index("tickets.Inquiry") < order.index("helpdesk.Ticket")
    assert order.index("helpdesk.Ticket") < order.index("helpdesk.Queue")
    assert order.index("crm.Donor") < order.index("crm.Municipality")
