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
from django.db.models import F, Func, Q, QuerySet, TextField, Value
from django.db.models.functions import StrIndex
from django.db.models.lookups import GreaterThan

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
    if connection.vendor == "postgresql" and len(term) == 2:
        # A 2-character term is one bigram: array containment probes the GIN index, and its
        # statistics (ANALYZE keeps them for the index expression) estimate the matches well.
        # A LIKE beside it would be planned through the trigram index, which has no trigram to
        # look up for two characters and reads all of itself (2 s at 1M tickets), and the
        # planner would multiply the two equal selectivities and expect far too few rows. The
        # equivalent strpos() test is unindexed and cheap: a newest-first walk runs it first
        # (fz_bigrams is declared costly), so bigrams are computed only for hits.
        found = Q()
        bigrams = Q()
        for column in columns:
            found |= Q(GreaterThan(StrIndex(F(column), Value(term)), 0))
            bigrams |= Q(ArrayContains(Bigrams(F(column)), [term]))
        return found & bigrams
    likes = Q()
    for column in columns:
        # LIKE '%term%', which pg_trgm's gin_trgm_ops index serves for 3+ characters.
        likes |= Q(**{f"{column}__contains": term})
    return likes


def search_inquiries(queryset: QuerySet, user: Any, query: str) -> QuerySet:
    """Inquiries the user may see whose text contains every word of ``query``."""
    return matching_text(queryset.visible_to(user), user, query)


def matching_text(scoped: QuerySet, user: Any, query: str) -> QuerySet:
    """Rows of ``scoped`` (already narrowed to what the user may see) containing every word.

    The scope is not applied again here: a second ``municipality_id IN (…)`` makes the planner
    square its selectivity, expect a few thousand rows instead of the scope's hundred
    thousand, and sort every match instead of walking the newest-first index.

    Operator staff also match operator-only notes; city officials never do, so a hit can't
    reveal a note they may not read.
    """
    terms = [t for t in normalize_for_search(query).split() if t]
    if not terms:
        return scoped.none()
    include_internal = bool(getattr(user, "is_operator_staff", False))
    for term in terms:
        scoped = scoped.filter(_term_filter(term, include_internal=include_internal))
    return scoped
