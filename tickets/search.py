"""Japanese substring search over tickets and their follow-ups.

Inquiry.search_text holds the ticket's title, description and city-visible follow-ups, and
Inquiry.search_text_internal the operator-only notes, both normalized the same way as the query
(crm.normalize.fold_kana, as donors' readings are: NFKC, hiragana folded to katakana; lower case). On PostgreSQL a
pg_trgm GIN index serves queries of 3+ characters and a GIN index over the text's character
bigrams (function ``fz_bigrams``) serves 2-character ones, which trigrams cannot. SQLite scans.
"""

from __future__ import annotations

from typing import Any

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.fields.array import ArrayContains
from django.db import connection
from django.db.models import F, Func, Q, QuerySet, TextField

from crm.normalize import fold_kana


def normalize_for_search(text: str) -> str:
    """The project's kana folding (hiragana and katakana meet), lower case."""
    return fold_kana(text).lower()


class Bigrams(Func):
    """fz_bigrams(text): the distinct character bigrams; its GIN index is in migration 0003."""

    function = "fz_bigrams"
    output_field = ArrayField(TextField())


def _term_filter(term: str, *, include_internal: bool) -> Q:
    columns = ["search_text"] + (["search_text_internal"] if include_internal else [])
    likes = Q()
    for column in columns:
        # LIKE '%term%', which pg_trgm's gin_trgm_ops index serves for 3+ characters.
        likes |= Q(**{f"{column}__contains": term})
    if connection.vendor == "postgresql" and len(term) == 2:
        # A 2-character term is one bigram: array containment probes the GIN index. It is
        # equivalent to the LIKEs, which stay beside it: a bitmap scan then drops the bigram
        # test as already answered by the index, and a newest-first walk runs the cheap LIKE
        # first (fz_bigrams is declared costly), so bigrams are computed only for hits.
        bigrams = Q()
        for column in columns:
            bigrams |= Q(ArrayContains(Bigrams(F(column)), [term]))
        return likes & bigrams
    return likes


def search_inquiries(queryset: QuerySet, user: Any, query: str) -> QuerySet:
    """Inquiries the user may see whose text contains every word of ``query``.

    Operator staff also match operator-only notes; city officials never do, so a hit can't
    reveal a note they may not read.
    """
    queryset = queryset.visible_to(user)
    terms = [t for t in normalize_for_search(query).split() if t]
    if not terms:
        return queryset.none()
    include_internal = bool(getattr(user, "is_operator_staff", False))
    for term in terms:
        queryset = queryset.filter(_term_filter(term, include_internal=include_internal))
    return queryset
