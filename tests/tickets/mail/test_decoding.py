"""The corpus: every encoding Japanese mail arrives in, with the exact text we must read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tickets.mail import charsets, decoding

CORPUS = Path(__file__).parent / "corpus"
EXPECTED = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_message_decodes_exactly(name):
    mail = decoding.parse((CORPUS / name).read_bytes())
    expected = EXPECTED[name]
    assert mail.subject == expected["subject"]
    assert mail.body == expected["body"]
    if "attachments" in expected:
        assert [a.filename for a in mail.attachments] == expected["attachments"]


def test_windows_characters_in_iso2022jp_survive():
    # ① ㈱ (NEC row 13), 髙 﨑 (IBM extensions in rows 89–92), ～ as Outlook writes them.
    assert charsets.decode_iso2022jp(b"\x1b$B-!-j|byu!A\x1b(B") == "①㈱髙﨑～"


def test_standard_iso2022jp_reads_like_pythons_codec_except_windows_mappings():
    text = "ふるさと納税の返礼品（いくら醤油漬け）について"
    assert charsets.decode_iso2022jp(text.encode("iso2022_jp")) == text


def test_outbound_iso2022jp_round_trips_windows_characters():
    text = "髙﨑様 ①㈱ ～ ｶﾀｶﾅ"
    encoded = charsets.encode_iso2022jp(text)
    assert encoded.isascii()
    assert charsets.decode_iso2022jp(encoded) == "髙﨑様 ①㈱ ～ カタカナ"


def test_attachment_bytes_are_decoded_from_base64():
    mail = decoding.parse((CORPUS / "rfc2231_filenames.eml").read_bytes())
    jpeg, pdf = mail.attachments
    assert jpeg.data.startswith(b"\xff\xd8\xff") and jpeg.data.endswith(b"\xff\xd9")
    assert pdf.data.startswith(b"%PDF-")


def test_raw_8bit_display_name_is_read():
    mail = decoding.parse((CORPUS / "raw_8bit_headers_sjis.eml").read_bytes())
    assert (mail.from_name, mail.from_address) == ("髙橋 ①", "takahashi@example.jp")


def test_html_body_marks_its_origin():
    mail = decoding.parse((CORPUS / "html_only.eml").read_bytes())
    assert mail.body_from_html
    assert "alert" not in mail.body and "color" not in mail.body


def test_raw_iso2022jp_escape_sequences_in_a_header_are_decoded():
    # Old mailers put ISO-2022-JP in headers without RFC 2047 encoded words.
    raw = b"From: a@example.jp\r\nSubject: \x1b$BJVNiIJ\x1b(B-\x1b$B-!\x1b(B\r\n\r\nbody\r\n"
    assert decoding.parse(raw).subject == "返礼品-①"


def test_jis_x_0213_plane_2_characters_are_not_read_as_plane_1():
    # ESC $ ( P selects plane 2: the same byte pair there is another character than in plane 1.
    assert charsets.decode_iso2022jp("𩸽と鷗".encode("iso2022_jp_2004")) == "𩸽と鷗"
