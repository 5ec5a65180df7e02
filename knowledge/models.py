"""FAQ articles and canned replies (定型文), per municipality or operator-wide (municipality null)."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import Q

from crm.access import MunicipalityScopedQuerySet, visible_municipality_ids
from crm.models import Municipality


class KnowledgeQuerySet(MunicipalityScopedQuerySet):
    """Operator-wide rows (municipality null) are visible to operator staff alongside their cities'.

    City officials see only their own municipality's rows: the operator's defaults are the
    operator's working material, not the city's.
    """

    def visible_to(self, user: Any) -> KnowledgeQuerySet:
        ids = visible_municipality_ids(user)
        if not ids:
            return self.none()
        scoped = Q(municipality_id__in=ids)
        if user.is_operator_staff:
            scoped |= Q(municipality__isnull=True)
        return self.filter(scoped)

    def for_municipality(self, municipality_id: int | None) -> KnowledgeQuerySet:
        """What applies to one municipality: its own rows plus the operator-wide defaults."""
        return self.filter(Q(municipality_id=municipality_id) | Q(municipality__isnull=True))

    def active(self) -> KnowledgeQuerySet:
        return self.filter(is_active=True)

    def search(self, text: str) -> KnowledgeQuerySet:
        """Every word must appear in the title, keywords or body (case-insensitive)."""
        qs = self
        for word in text.split():
            qs = qs.filter(
                Q(title__icontains=word) | Q(keywords__icontains=word) | Q(body__icontains=word)
            )
        return qs


class KnowledgeBase(models.Model):
    municipality = models.ForeignKey(
        Municipality,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name="自治体",
        help_text="空欄なら全自治体共通",
    )
    # A tickets.Category code (kept as text so knowledge does not depend on the ticket tables).
    category_code = models.SlugField("分類コード", max_length=40, blank=True)
    title = models.CharField("件名", max_length=200)
    keywords = models.CharField("検索語", max_length=300, blank=True)
    body = models.TextField("本文")
    sort_order = models.PositiveSmallIntegerField("表示順", default=100)
    is_active = models.BooleanField("有効", default=True)
    # Stable key for the starter set so that re-seeding updates instead of duplicating.
    seed_key = models.SlugField(max_length=60, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        "crm.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = KnowledgeQuerySet.as_manager()

    class Meta:
        abstract = True
        ordering = ["sort_order", "title"]

    def __str__(self) -> str:
        return self.title

    @property
    def scope_label(self) -> str:
        return self.municipality.name if self.municipality_id else "共通"


class Article(KnowledgeBase):
    """よくある質問: what the agent reads to answer."""

    class Meta(KnowledgeBase.Meta):
        verbose_name = verbose_name_plural = "よくある質問"
        indexes = [models.Index(fields=["municipality", "is_active"], name="article_muni_active")]
        constraints = [
            models.UniqueConstraint(
                fields=["seed_key"], condition=~Q(seed_key=""), name="article_seed_key_unique"
            )
        ]


class CannedReply(KnowledgeBase):
    """定型文: text inserted into a reply, with {寄附者名}-style variables filled from the ticket.

    It may also act on the ticket (a macro): set its status, category (``category_code``),
    severity and assignee, and add an internal note, all applied with the reply. The values are
    tickets' codes kept as plain data, since knowledge sits below tickets; tickets applies them
    and offers their choices (``knowledge.macros``).
    """

    class Assignee(models.TextChoices):
        KEEP = "", "変更しない"
        ME = "me", "自分"
        NOBODY = "nobody", "未割当に戻す"

    action_status = models.PositiveSmallIntegerField("状態を変更", null=True, blank=True)
    action_set_category = models.BooleanField("分類コードの分類を設定", default=False)
    action_severity = models.CharField("重要度を変更", max_length=8, blank=True)
    action_assignee = models.CharField(
        "担当者", max_length=8, blank=True, choices=Assignee.choices, default=Assignee.KEEP
    )
    action_note = models.TextField("内部メモを追加", blank=True)

    class Meta(KnowledgeBase.Meta):
        verbose_name = verbose_name_plural = "定型文"
        indexes = [models.Index(fields=["municipality", "is_active"], name="canned_muni_active")]
        constraints = [
            models.UniqueConstraint(
                fields=["seed_key"], condition=~Q(seed_key=""), name="canned_seed_key_unique"
            )
        ]

    @property
    def has_actions(self) -> bool:
        return bool(
            self.action_status
            or self.action_set_category
            or self.action_severity
            or self.action_assignee
            or self.action_note
        )
