"""Bytes → text for Japanese mail, the way Japanese mail clients actually write it.

Windows (Outlook, Becky!, Thunderbird on Windows) writes "ISO-2022-JP" as Microsoft's CP50220:
JIS X 0208 plus the NEC special row 13 (①, ㈱, ㌔) and the IBM extension rows (髙, 﨑), and maps
～ to FULLWIDTH TILDE. Python's ``iso2022_jp`` codec rejects those characters. "Shift_JIS" from
those clients is really CP932, and "EUC-JP" from some is CP51932. So every legacy Japanese encoding
is read through one table, CP932's: escape sequences and EUC bytes are turned into Shift_JIS bytes
and decoded with ``cp932``. The same text then looks the same whichever encoding carried it.
"""

from __future__ import annotations

import codecs
import re
import unicodedata

import charset_normalizer

ESC = 0x1B

# Labels that all mean "the Japanese legacy family", folded to what we really decode.
_ISO2022 = {
    "iso-2022-jp",
    "iso2022jp",
    "iso-2022-jp-ms",
    "iso-2022-jp-1",
    "iso-2022-jp-2",
    "iso-2022-jp-3",
    "iso-2022-jp-2004",
    "cp50220",
    "cp50221",
    "cp50222",
    "csiso2022jp",
    "jis",
}
_SJIS = {
    "shift_jis",
    "shift-jis",
    "sjis",
    "x-sjis",
    "ms_kanji",
    "csshiftjis",
    "cp932",
    "ms932",
    "windows-31j",
    "x-ms-cp932",
    "shift_jisx0213",
    "shift_jis-2004",
}
_EUC = {"euc-jp", "eucjp", "x-euc-jp", "cseucpkdfmtjapanese", "cp51932", "euc-jis-2004", "ujis"}
# Labels that say little: mail with these labels but Japanese bytes is mislabelled.
_WEAK = {
    "",
    "us-ascii",
    "ascii",
    "iso-8859-1",
    "latin-1",
    "latin1",
    "windows-1252",
    "cp1252",
    "unknown-8bit",
    "x-unknown",
    "default",
    "8bit",
}

_ESCAPE_RE = re.compile(rb"\x1b(\(B|\(J|\(I|\$@|\$B|\$\(D|\$\(O|\$\(Q|\$\(P|&@\x1b\$B)")


def canonical(label: str | None) -> str:
    label = (label or "").strip().strip('"').lower()
    if label in _ISO2022:
        return "iso-2022-jp"
    if label in _SJIS:
        return "cp932"
    if label in _EUC:
        return "euc-jp"
    if label in ("utf8", "utf-8", "x-utf-8", "unicode-1-1-utf-8"):
        return "utf-8"
    return label


def _jis_pair_to_sjis(j1: int, j2: int, out: bytearray) -> None:
    """JIS X 0208 row/cell bytes (0x21–0x7E each) → the Shift_JIS byte pair.

    Rows 0x79–0x7C are where CP50220 puts the NEC-selected IBM extensions; they land on
    Shift_JIS 0xED/0xEE, which cp932 decodes to 髙, 﨑 and friends.
    """
    s1 = ((j1 + 1) >> 1) + (0x70 if j1 <= 0x5E else 0xB0)
    if j1 & 1:
        s2 = j2 + (0x1F if j2 <= 0x5F else 0x20)
    else:
        s2 = j2 + 0x7E
    out.append(s1)
    out.append(s2)


def decode_iso2022jp(data: bytes) -> str:
    """CP50220 / ISO-2022-JP-MS decoding (Python has no such codec)."""
    parts: list[str] = []
    buf = bytearray()
    mode = "ascii"  # ascii | kana | jis | jis0212 | jis2004
    i = 0
    n = len(data)
    shifted = False  # SO/SI half-width katakana (CP50222 style)
    # JIS X 0213 plane 1 (ESC $ ( O / Q) or plane 2 (ESC $ ( P): the pair means another character
    # in each, so the escape is kept to decode with.
    jis2004_escape = b"\x1b$(Q"

    def flush() -> None:
        if buf:
            parts.append(buf.decode("cp932", errors="replace"))
            buf.clear()

    while i < n:
        b = data[i]
        if b == ESC:
            m = _ESCAPE_RE.match(data, i)
            if m:
                seq = m.group(1)
                if seq in (b"(B", b"(J"):
                    mode = "ascii"
                elif seq == b"(I":
                    mode = "kana"
                elif seq in (b"$@", b"$B", b"&@\x1b$B"):
                    mode = "jis"
                elif seq == b"$(D":
                    mode = "jis0212"
                else:
                    mode = "jis2004"
                    jis2004_escape = b"\x1b$(P" if seq == b"$(P" else b"\x1b$(Q"
                i = m.end()
                continue
            buf.append(b)
            i += 1
            continue
        if b == 0x0E:
            shifted = True
            i += 1
            continue
        if b == 0x0F:
            shifted = False
            i += 1
            continue
        if b in (0x0A, 0x0D):
            # Line ends reset to ASCII in practice even when a sloppy writer forgot ESC ( B.
            if mode != "ascii":
                mode = "ascii"
            buf.append(b)
            i += 1
            continue
        if shifted and 0x21 <= b <= 0x5F:
            buf.append(b + 0x80)
            i += 1
            continue
        if mode == "ascii":
            buf.append(b)
            i += 1
        elif mode == "kana":
            buf.append(b + 0x80 if 0x21 <= b <= 0x5F else b)
            i += 1
        elif i + 1 < n and 0x21 <= b <= 0x7E and 0x21 <= data[i + 1] <= 0x7E:
            if mode == "jis":
                _jis_pair_to_sjis(b, data[i + 1], buf)
            else:
                flush()
                esc = b"\x1b$(D" if mode == "jis0212" else jis2004_escape
                codec = "iso2022_jp_2" if mode == "jis0212" else "iso2022_jp_2004"
                parts.append((esc + data[i : i + 2] + b"\x1b(B").decode(codec, errors="replace"))
            i += 2
        else:
            buf.append(b)
            i += 1
    flush()
    return "".join(parts)


def decode_eucjp(data: bytes) -> str:
    """EUC-JP (and CP51932) through the CP932 table, JIS X 0212 through Python's codec."""
    parts: list[str] = []
    buf = bytearray()
    i = 0
    n = len(data)
    while i < n:
        b = data[i]
        if b < 0x80:
            buf.append(b)
            i += 1
        elif b == 0x8E and i + 1 < n:
            buf.append(data[i + 1])  # half-width katakana: same byte in Shift_JIS
            i += 2
        elif b == 0x8F and i + 2 < n:
            if buf:
                parts.append(buf.decode("cp932", errors="replace"))
                buf.clear()
            parts.append(data[i : i + 3].decode("euc_jp", errors="replace"))
            i += 3
        elif 0xA1 <= b <= 0xFE and i + 1 < n and 0xA1 <= data[i + 1] <= 0xFE:
            _jis_pair_to_sjis(b - 0x80, data[i + 1] - 0x80, buf)
            i += 2
        else:
            buf.append(b)
            i += 1
    if buf:
        parts.append(buf.decode("cp932", errors="replace"))
    return "".join(parts)


def _strict(data: bytes, charset: str) -> str | None:
    """Decode without replacement, or None if the bytes are not in that charset."""
    try:
        if charset == "iso-2022-jp":
            if any(b >= 0x80 for b in data):
                return None
            text = decode_iso2022jp(data)
            return None if "\ufffd" in text else text
        if charset == "euc-jp":
            data.decode("euc_jis_2004")  # validates the byte structure
            return decode_eucjp(data)
        return data.decode(charset)
    except (UnicodeDecodeError, LookupError):
        return None


def _japanese_score(text: str) -> float:
    """How much a decoding looks like Japanese prose rather than mojibake."""
    good = bad = 0
    for ch in text:
        o = ord(ch)
        if 0x3040 <= o <= 0x30FF or 0x4E00 <= o <= 0x9FFF or 0x3000 <= o <= 0x303F:
            good += 1
        elif 0xFF01 <= o <= 0xFF5E:
            good += 0.5
        elif 0xFF61 <= o <= 0xFF9F:  # half-width katakana: rare in prose, common in mojibake
            bad += 1
        elif 0xE000 <= o <= 0xF8FF or o == 0xFFFD or 0x80 <= o <= 0x9F:
            bad += 3
        elif 0x0400 <= o <= 0x04FF or 0x0370 <= o <= 0x03FF or 0x2500 <= o <= 0x257F:
            bad += 1  # Cyrillic, Greek, box drawing: what EUC looks like read as CP932
    return good - 2 * bad


def detect_and_decode(data: bytes, declared: str | None = None) -> tuple[str, str]:
    """Return (text, charset used). Never raises; undecodable bytes become U+FFFD."""
    label = canonical(declared)
    if not data:
        return "", label or "us-ascii"
    has_high = any(b >= 0x80 for b in data)
    if not has_high:
        if b"\x1b$" in data or b"\x1b(" in data:
            return decode_iso2022jp(data), "iso-2022-jp"
        text = _strict(data, label) if label and label not in _WEAK else None
        return (text, label) if text is not None else (data.decode("ascii"), "us-ascii")
    # Valid UTF-8 with multibyte sequences almost never happens by accident in legacy bytes,
    # so it wins over any label (mailers label UTF-8 as Shift_JIS and vice versa).
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    if label and label not in _WEAK and label not in ("utf-8", "iso-2022-jp"):
        text = _strict(data, label)
        if text is not None and (label not in ("cp932", "euc-jp") or _japanese_score(text) > 0):
            return text, label
    candidates = []
    for charset in ("cp932", "euc-jp"):
        text = _strict(data, charset)
        if text is not None:
            candidates.append((_japanese_score(text), charset, text))
    if candidates:
        score, charset, text = max(candidates)
        if score > 0:
            return text, charset
    best = charset_normalizer.from_bytes(data).best()
    if best is not None:
        guessed = canonical(best.encoding)
        if guessed in ("cp932", "euc-jp"):
            return detect_and_decode_forced(data, guessed), guessed
        return str(best), best.encoding
    if label and label not in ("utf-8",):
        try:
            codecs.lookup(label)
            return data.decode(label, errors="replace"), label
        except LookupError:
            pass
    return data.decode("cp932", errors="replace"), "cp932"


def detect_and_decode_forced(data: bytes, charset: str) -> str:
    if charset == "iso-2022-jp":
        return decode_iso2022jp(data)
    if charset == "euc-jp":
        return decode_eucjp(data)
    return data.decode(charset, errors="replace")


# --- Encoding (outbound) ----------------------------------------------------------------


def _sjis_pair_to_jis(s1: int, s2: int) -> tuple[int, int]:
    s1 -= 0xB0 if s1 >= 0xE0 else 0x70
    j1 = s1 * 2
    if s2 >= 0x9F:
        j2 = s2 - 0x7E
    else:
        j1 -= 1
        j2 = s2 - (0x20 if s2 > 0x7F else 0x1F)
    return j1, j2


# IBM extensions (Shift_JIS 0xFA–0xFC) have NEC-selected twins at 0xED–0xEE that fit in JIS
# rows; CP50220 writes those. Built once from the cp932 table itself.
def _ibm_to_nec_map() -> dict[bytes, bytes]:
    by_char: dict[str, bytes] = {}
    for lead in (0xED, 0xEE):
        for trail in range(0x40, 0xFD):
            raw = bytes((lead, trail))
            try:
                by_char.setdefault(raw.decode("cp932"), raw)
            except UnicodeDecodeError:
                continue
    mapping = {}
    for lead in (0xFA, 0xFB, 0xFC):
        for trail in range(0x40, 0xFD):
            raw = bytes((lead, trail))
            try:
                ch = raw.decode("cp932")
            except UnicodeDecodeError:
                continue
            if ch in by_char:
                mapping[raw] = by_char[ch]
    return mapping


_IBM_TO_NEC = _ibm_to_nec_map()


def encode_iso2022jp(text: str) -> bytes:
    """CP50220: text → ISO-2022-JP with the Windows characters kept (half-width kana widened).

    Characters outside CP932 raise UnicodeEncodeError so the caller can fall back to UTF-8.
    """
    out = bytearray()
    mode = "ascii"
    for ch in text:
        o = ord(ch)
        if o < 0x80:
            if mode != "ascii":
                out += b"\x1b(B"
                mode = "ascii"
            out.append(o)
            continue
        if 0xFF61 <= o <= 0xFF9F:
            ch = unicodedata.normalize("NFKC", ch)  # ISO-2022-JP has no half-width kana
        for c in ch:
            sj = c.encode("cp932")
            if len(sj) != 2:
                raise UnicodeEncodeError("iso-2022-jp", text, 0, 1, "not representable")
            sj = _IBM_TO_NEC.get(sj, sj)
            if sj[0] >= 0xF0:
                raise UnicodeEncodeError("iso-2022-jp", text, 0, 1, "user-defined character")
            if mode != "jis":
                out += b"\x1b$B"
                mode = "jis"
            out += bytes(_sjis_pair_to_jis(sj[0], sj[1]))
    if mode != "ascii":
        out += b"\x1b(B"
    return bytes(out)
