"""What supervisors set up: triage rules, the acknowledgement mail, an inbox's fetch/send settings."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db import transaction

from crm import normalize
from crm.access import is_operator_admin, is_supervisor, visible_municipality_ids
from crm.models import Municipality, MunicipalityEmailAddress, User
from tickets.mail import outbound, triage
from tickets.mail.models import Mailbox, MunicipalityMailSettings, TriageRule
from tickets.models import Category


def require_supervisor(actor: User, municipality_id: int | None) -> None:
    if not is_supervisor(actor):
        raise PermissionDenied("監督者のみが操作できます。")
    if municipality_id is None:
        if not is_operator_admin(actor):
            raise PermissionDenied("宛先不明のメールは運営管理者のみが操作できます。")
    elif municipality_id not in visible_municipality_ids(actor):
        raise PermissionDenied("この自治体のデータを変更する権限がありません。")


@transaction.atomic
def triage_rule_save(
    *,
    actor: User,
    municipality: Municipality,
    name: str,
    keywords: str,
    category: Category | None,
    severity: str,
    sort_order: int = 100,
    active: bool = True,
    rule: TriageRule | None = None,
) -> TriageRule:
    require_supervisor(actor, municipality.pk)
    if rule is not None and rule.municipality_id != municipality.pk:
        raise PermissionDenied("他の自治体のルールです。")
    rule = rule or TriageRule(municipality=municipality)
    rule.name, rule.keywords, rule.category = name, keywords, category
    rule.severity, rule.sort_order, rule.active = severity, sort_order, active
    rule.save()
    return rule


@transaction.atomic
def triage_rule_delete(*, actor: User, rule: TriageRule) -> None:
    require_supervisor(actor, rule.municipality_id)
    rule.delete()


@transaction.atomic
def triage_rules_add_defaults(*, actor: User, municipality: Municipality) -> int:
    require_supervisor(actor, municipality.pk)
    existing = set(
        TriageRule.objects.filter(municipality=municipality).values_list("name", flat=True)
    )
    categories = {c.code: c for c in Category.objects.all()}
    added = 0
    for order, (name, keywords, code, severity) in enumerate(triage.DEFAULT_RULES, start=1):
        if name in existing:
            continue
        TriageRule.objects.create(
            municipality=municipality,
            name=name,
            keywords=keywords,
            category=categories.get(code),
            severity=severity,
            sort_order=order * 10,
        )
        added += 1
    return added


@transaction.atomic
def mailbox_configure(*, address: str, **fields) -> Mailbox:
    """Create or update the fetch/send settings of one registered inbound address."""
    inbound = MunicipalityEmailAddress.objects.get(address=normalize.normalize_email(address))
    box = Mailbox.objects.filter(address=inbound).first() or Mailbox(
        address=inbound, municipality_id=inbound.municipality_id
    )
    for name, value in fields.items():
        if value is not None:
            setattr(box, name, value)
    box.full_clean()
    box.save()
    return box


@transaction.atomic
def mail_settings_save(
    *,
    actor: User,
    municipality: Municipality,
    acknowledgement_enabled: bool,
    acknowledgement_subject: str,
    acknowledgement_body: str,
) -> MunicipalityMailSettings:
    require_supervisor(actor, municipality.pk)
    prefs, _ = MunicipalityMailSettings.objects.get_or_create(municipality=municipality)
    prefs.acknowledgement_enabled = acknowledgement_enabled
    prefs.acknowledgement_subject = outbound.one_line(acknowledgement_subject)
    prefs.acknowledgement_body = acknowledgement_body
    prefs.save()
    return prefs


@transaction.atomic
def inbound_address_add(*, municipality: Municipality, address: str) -> MunicipalityEmailAddress:
    """Register an inbound address for ``municipality`` (unique across municipalities); mail
    to it is routed there from now on. Its mailbox starts as MTA delivery (no fetching)."""
    normalized = normalize.normalize_email(address)
    row = MunicipalityEmailAddress(municipality=municipality, address=normalized)
    row.full_clean()
    row.save()
    Mailbox.objects.create(address=row, municipality=municipality)
    return row


@transaction.atomic
def inbound_address_remove(*, address: MunicipalityEmailAddress) -> None:
    """Stop routing mail of this address; mail already received stays with its municipality."""
    address.delete()
