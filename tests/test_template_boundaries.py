"""Templates follow the layers too: a lower app's pages never include a higher app's parts."""

from __future__ import annotations

import re
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
# App template folders from the lowest layer up (see [tool.importlinter] in pyproject.toml); mail
# is inside tickets. Pages shared by every app (base.html, _head.html, _nav.html) sit at the top.
LAYERS = [("crm",), ("knowledge",), ("tickets", "mail"), ("telephony",)]


def test_no_template_loads_or_includes_a_higher_apps_templates():
    found = []
    for index, apps in enumerate(LAYERS):
        higher = [app for layer in LAYERS[index + 1 :] for app in layer]
        if not higher:
            continue
        pattern = re.compile(
            r"{%\s*load\b[^%]*\b(" + "|".join(higher) + r")\b[^%]*%}"
            r"|[\"'](" + "|".join(higher) + r")/[^\"']+\.html[\"']"
        )
        for path in sorted(p for app in apps for p in (TEMPLATES / app).glob("*.html")):
            for match in pattern.finditer(path.read_text(encoding="utf-8")):
                found.append(f"{path.relative_to(TEMPLATES)}: {match.group(0)}")
    assert found == []
