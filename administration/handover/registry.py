"""Which tables hold a municipality's data, found by walking Django's app registry.

A model *belongs* to a municipality when a chain of foreign keys leads from it to
``crm.Municipality`` (or to a root another app declares, such as helpdesk's Queue through
``tickets.handover.municipality_roots``) and no link of the chain is ``SET_NULL``: such a row
is deleted with what it points to, so it is that municipality's. A model whose only chains go
through ``SET_NULL`` links is merely *linked*: its rows survive the deletion with the link
cleared (an agent's current call, the hand-over records themselves).

Models added later are found without code changes. ``SHARED`` names the models that hold no
municipality's data although a name suggests otherwise, with the reason; the test
``tests/administration/test_handover_registry.py`` fails for any model with a municipality
column that is neither found here nor declared.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from django.apps import apps
from django.db import models

from crm.models import Municipality

# Models without a chain of foreign keys to a municipality that still deserve a word.
SHARED: dict[str, str] = {
    "crm.User": "運営者の利用者アカウント（自治体職員のアカウントは削除時に無効化・匿名化）",
    "crm.AuditLog": "監査ログ。自治体を名指す行は削除時に匿名化",
    "crm.Carrier": "運営者共通の配送業者（出力には寄附で使われたものを含める）",
    "tickets.Category": "運営者共通の問合せ分類",
    "telephony.Disposition": "運営者共通の後処理コード",
    "jobs.PendingJob": "処理待ちジョブ（識別子のみ、個人情報なし）",
}

# Columns never written to an export: secrets, and text derived from other columns.
EXCLUDED_COLUMNS: set[str] = {
    "ticketmail.Mailbox.password",
    "helpdesk.Ticket.secret_key",  # helpdesk's public-page key; those pages are not served
    "tickets.Inquiry.search_text",
    "tickets.Inquiry.search_text_internal",
}

# Operator-wide tables whose rows an export includes when the municipality's rows refer to them.
REFERENCED_SHARED: tuple[str, ...] = ("crm.Carrier", "tickets.Category", "telephony.Disposition")


# helpdesk's tables carry English names; these are the words of our screens for them.
TABLE_NAMES: dict[str, str] = {
    "helpdesk.Queue": "問合せキュー（helpdesk）",
    "helpdesk.Ticket": "問合せ本体（helpdesk のチケット）",
    "helpdesk.FollowUp": "対応履歴（helpdesk のフォローアップ）",
    "helpdesk.FollowUpAttachment": "対応履歴の添付ファイル（helpdesk）",
    "helpdesk.TicketChange": "対応履歴の変更内容（helpdesk）",
    "helpdesk.TicketCC": "問合せのCC（helpdesk）",
    "helpdesk.TicketCustomFieldValue": "問合せの追加項目（helpdesk）",
    "helpdesk.TicketDependency": "問合せの依存関係（helpdesk）",
    "helpdesk.Checklist": "問合せのチェックリスト（helpdesk）",
    "helpdesk.ChecklistTask": "チェックリストの項目（helpdesk）",
}


def table_description(model: type[models.Model]) -> str:
    return TABLE_NAMES.get(model._meta.label, str(model._meta.verbose_name))


@dataclass(frozen=True)
class Table:
    model: type[models.Model]
    # ORM lookup from this model to the root's id: "municipality_id", "donor__municipality_id",
    # "ticket__queue_id" …; the value is the municipality's id or the root ids (``__in``).
    lookup: str
    root: str  # "crm.Municipality" or a declared root's label
    hops: int

    @property
    def label(self) -> str:
        return self.model._meta.label

    @property
    def db_table(self) -> str:
        return self.model._meta.db_table

    def filter_kwargs(self, municipality_id: int, root_ids: dict[str, list[int]]) -> dict:
        if self.root == Municipality._meta.label:
            return {self.lookup: municipality_id}
        return {f"{self.lookup}__in": root_ids.get(self.root, [])}


@dataclass(frozen=True)
class Link:
    """A SET_NULL foreign key from a model that does not belong to a municipality."""

    model: type[models.Model]
    field: models.ForeignKey

    @property
    def label(self) -> str:
        return f"{self.model._meta.label}.{self.field.name}"


def roots() -> dict[type[models.Model], Callable[[int], list[int]]]:
    from tickets.handover import municipality_roots

    return municipality_roots()


def _owning(field: models.Field) -> bool:
    # DO_NOTHING counts as owning: such a row would dangle once its target is gone.
    return field.remote_field.on_delete not in (models.SET_NULL, models.SET_DEFAULT)


def _foreign_keys(model: type[models.Model]) -> list[models.ForeignKey]:
    return [f for f in model._meta.concrete_fields if f.many_to_one or f.one_to_one]


@cache
def owned_tables() -> tuple[Table, ...]:
    """Every table holding a municipality's rows, each with its shortest owning chain."""
    found: dict[type[models.Model], Table] = {
        Municipality: Table(Municipality, "pk", Municipality._meta.label, 0)
    }
    for model in roots():
        found[model] = Table(model, "pk", model._meta.label, 0)
    all_models = apps.get_models(include_auto_created=True)
    hops = 0
    while True:
        hops += 1
        new: dict[type[models.Model], Table] = {}
        for model in all_models:
            if model in found:
                continue
            best: Table | None = None
            for field in _foreign_keys(model):
                target = found.get(field.related_model)
                if target is None or not _owning(field):
                    continue
                if target.lookup == "pk":
                    lookup = field.attname
                else:
                    lookup = f"{field.name}__{target.lookup}"
                candidate = Table(model, lookup, target.root, target.hops + 1)
                # Prefer a chain to the municipality itself, then the fewest joins.
                key = (candidate.root != Municipality._meta.label, candidate.lookup.count("__"))
                if best is None or key < (
                    best.root != Municipality._meta.label,
                    best.lookup.count("__"),
                ):
                    best = candidate
            if best is not None:
                new[model] = best
        if not new:
            break
        found.update(new)
    return tuple(sorted(found.values(), key=lambda t: t.label))


@cache
def links() -> tuple[Link, ...]:
    owned = {t.model for t in owned_tables()}
    result = []
    for model in apps.get_models(include_auto_created=True):
        if model in owned:
            continue
        for field in _foreign_keys(model):
            if field.related_model in owned:
                result.append(Link(model, field))
    return tuple(result)


@cache
def deletion_order() -> tuple[Table, ...]:
    """Owned tables, each before every owned table it refers to (children first)."""
    tables = {t.model: t for t in owned_tables()}
    refers: dict[type[models.Model], set[type[models.Model]]] = {
        m: {
            f.related_model
            for f in _foreign_keys(m)
            if f.related_model in tables and f.related_model is not m
        }
        for m in tables
    }
    # Reverse chains (a root found through a child, as helpdesk's Queue through
    # MunicipalityQueue) are resolved once before the first batch, so they add no order here.
    referenced_by: dict[type[models.Model], set[type[models.Model]]] = {m: set() for m in tables}
    for m, targets in refers.items():
        for t in targets:
            referenced_by[t].add(m)
    order: list[Table] = []
    done: set[type[models.Model]] = set()
    pending = sorted(tables, key=lambda m: m._meta.label)
    while pending:
        ready = [m for m in pending if referenced_by[m] <= done]
        if not ready:
            raise RuntimeError(
                "削除順を決められません（外部キーの循環）: "
                + ", ".join(m._meta.label for m in pending)
            )
        for m in ready:
            order.append(tables[m])
            done.add(m)
        pending = [m for m in pending if m not in done]
    return tuple(order)


def export_columns(model: type[models.Model]) -> list[models.Field]:
    label = model._meta.label
    return [f for f in model._meta.concrete_fields if f"{label}.{f.name}" not in EXCLUDED_COLUMNS]


def self_references(model: type[models.Model]) -> list[models.ForeignKey]:
    return [f for f in _foreign_keys(model) if f.related_model is model]
