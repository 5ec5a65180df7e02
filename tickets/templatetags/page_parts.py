"""{% page_parts "place" %}: the parts other apps added to this place (see tickets.page_parts)."""

from __future__ import annotations

from django import template
from django.utils.safestring import SafeString, mark_safe

from tickets import page_parts as registry

register = template.Library()


@register.simple_tag(takes_context=True)
def page_parts(context: template.Context, place: str) -> SafeString:
    # As {% include %} does: each part sees the page's whole context.
    engine = context.template.engine
    return mark_safe(  # each part is a template, autoescaped when rendered
        "".join(engine.get_template(name).render(context) for name in registry.page_parts(place))
    )
