"""Password rule of the municipal specs: 8+ characters mixing upper, lower, digits and symbols."""

import re

from django.core.exceptions import ValidationError

_CLASSES = (
    (re.compile(r"[A-Z]"), "英大文字"),
    (re.compile(r"[a-z]"), "英小文字"),
    (re.compile(r"[0-9]"), "数字"),
    (re.compile(r"[^A-Za-z0-9]"), "記号"),
)


class CharacterClassesValidator:
    def validate(self, password: str, user=None) -> None:
        missing = [label for pattern, label in _CLASSES if not pattern.search(password)]
        if missing:
            raise ValidationError(
                "パスワードには%(missing)sを含めてください。",
                code="password_missing_character_class",
                params={"missing": "・".join(missing)},
            )

    def get_help_text(self) -> str:
        return "英大文字・英小文字・数字・記号をそれぞれ1文字以上含めてください。"
