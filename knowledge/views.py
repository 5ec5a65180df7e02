"""The knowledge base pages: search FAQ and canned replies; supervisors edit them."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from crm.access import scoped_or_404
from crm.models import Municipality
from knowledge.forms import ACTION_FIELDS, CannedReplyForm, KnowledgeForm
from knowledge.models import Article, CannedReply
from knowledge.render import VARIABLES
from knowledge.services import can_edit_knowledge, knowledge_save

KINDS = {"faq": (Article, "よくある質問"), "canned": (CannedReply, "定型文")}


def _kind(kind: str):
    if kind not in KINDS:
        raise Http404
    return KINDS[kind]


@login_required
def index(request: HttpRequest) -> HttpResponse:
    if not request.user.is_operator_staff:
        raise PermissionDenied
    query = request.GET.get("q", "").strip()
    raw_m = request.GET.get("m", "")
    sections = []
    for kind, (model, label) in KINDS.items():
        qs = model.objects.visible_to(request.user).select_related("municipality")
        if raw_m.isdigit():
            qs = qs.for_municipality(int(raw_m))
        if query:
            qs = qs.search(query)
        sections.append({"kind": kind, "label": label, "rows": qs[:100]})
    context = {
        "query": query,
        "sections": sections,
        "municipalities": Municipality.objects.visible_to(request.user).order_by("code"),
        "selected": int(raw_m) if raw_m.isdigit() else None,
    }
    return render(request, "knowledge/index.html", context)


@login_required
def edit(request: HttpRequest, kind: str, pk: int | None = None) -> HttpResponse:
    model, label = _kind(kind)
    user = request.user
    if not user.is_operator_staff:
        raise PermissionDenied
    instance = scoped_or_404(model.objects.all(), user, pk=pk) if pk else None
    if instance is not None and not can_edit_knowledge(user, instance.municipality_id):
        raise PermissionDenied
    municipalities = Municipality.objects.visible_to(user).order_by("code")
    initial = {}
    if instance is not None:
        initial = {
            f: getattr(instance, f)
            for f in (
                "municipality",
                "title",
                "keywords",
                "category_code",
                "body",
                "sort_order",
                "is_active",
                *(ACTION_FIELDS if model is CannedReply else ()),
            )
        }
    form_class = CannedReplyForm if model is CannedReply else KnowledgeForm
    form = form_class(request.POST or None, initial=initial, municipalities=municipalities)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            row = knowledge_save(actor=user, model=model, instance=instance, **data)
        except PermissionDenied:
            form.add_error("municipality", "この自治体の記事を編集する権限がありません。")
        else:
            messages.success(request, f"{label}「{row.title}」を保存しました。")
            return redirect("knowledge_index")
    context = {
        "form": form,
        "label": label,
        "instance": instance,
        "variables": VARIABLES,
        "kind": kind,
    }
    return render(request, "knowledge/edit.html", context)
