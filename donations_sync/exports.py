"""The rejected rows of an import as a CSV the operator can fix and import again.

The file has the original header plus a 理由 column and is written in the encoding the original
was read in (a CP932 export comes back as CP932, UTF-8 as UTF-8 with a BOM only if the original
had one), so it opens in the same tools the export came from.

Every character decoded from the original file encodes back into its encoding, except what
could not be decoded in the first place: those bytes were read as U+FFFD (and the row was
rejected for it). They are written as 〓 (geta, the customary mark for an unreadable character
in Japanese text), and the row's 理由 says so.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator

from donations_sync.imports.encoding import UTF8, open_text
from donations_sync.models import ImportRun

REASON_COLUMN = "理由"
GETA = "〓"
_BATCH = 2000


class _Echo:
    def write(self, value: str) -> str:
        return value


def rejections_encoding(run: ImportRun) -> str:
    return run.detected_encoding or run.encoding or UTF8


def encoding_label(run: ImportRun) -> str:
    """How the page names the file's encoding: CP932（Shift_JIS） or UTF-8."""
    encoding = run.detected_encoding or run.encoding
    if not encoding:
        return ""
    name = codecs.lookup(encoding).name
    if name in ("utf-8", "utf-8-sig"):
        return "UTF-8"
    if name in ("cp932", "shift_jis", "ms932"):
        return "CP932（Shift_JIS）"
    return encoding


def _original_header(run: ImportRun, encoding: str) -> tuple[list[str], bool]:
    """(header cells, whether the file starts with a UTF-8 BOM)."""
    stored = run.raw_file.storage.open(run.raw_file.name, "rb")
    with stored:
        binary = getattr(stored, "file", stored)  # the file object itself, for TextIOWrapper
        bom = binary.read(len(codecs.BOM_UTF8)) == codecs.BOM_UTF8
        binary.seek(0)
        text, _ = open_text(binary, encoding)
        header = next(csv.reader(text), [])
    return [cell.strip() for cell in header], bom


def _reason(line: int, column: str, reason: str) -> str:
    return f"{line}行目{f'・{column}' if column else ''}：{reason}"


def rejections_csv(run: ImportRun) -> Iterator[bytes]:
    """The file's bytes, a batch of rows at a time (for a streaming response)."""
    encoding = rejections_encoding(run)
    header, bom = _original_header(run, encoding)
    codec = codecs.lookup(encoding)
    if codec.name in ("utf-8", "utf-8-sig"):  # 'utf-8-sig' writes a BOM; keep the original's choice
        encoding, prefix = "utf-8", (codecs.BOM_UTF8 if bom else b"")
    else:
        prefix = b""
    writer = csv.writer(_Echo(), lineterminator="\r\n")
    width = len(header)

    def encode(text: str) -> tuple[bytes, bool]:
        try:
            return text.encode(encoding), False
        except UnicodeEncodeError:
            cleaned = "".join(
                ch if _encodable(ch, encoding) else GETA for ch in text.replace("\ufffd", GETA)
            )
            return cleaned.encode(encoding, errors="replace"), True

    yield prefix + encode(writer.writerow([*header, REASON_COLUMN]))[0]
    chunk: list[bytes] = []
    rows = run.rejections.order_by("line", "pk").values_list("line", "column", "reason", "raw")
    for line, column, reason, raw in rows.iterator(chunk_size=_BATCH):
        cells = [str(cell) for cell in (raw or [])]
        text = _reason(line, column, reason)
        # A rejected 楽天 order holds all its rows' cells end to end: back to one row per item.
        merged = width and len(cells) > width and len(cells) % width == 0
        rows = [cells[i : i + width] for i in range(0, len(cells), width)] if merged else [cells]
        for row in rows:
            row = row + [""] * (width - len(row))
            data, replaced = encode(writer.writerow([*row, text]))
            if replaced:
                data, _ = encode(
                    writer.writerow([*row, f"{text}（読めなかった文字は{GETA}にしています）"])
                )
            chunk.append(data)
        if len(chunk) >= _BATCH:
            yield b"".join(chunk)
            chunk = []
    if chunk:
        yield b"".join(chunk)


def _encodable(ch: str, encoding: str) -> bool:
    try:
        ch.encode(encoding)
    except UnicodeEncodeError:
        return False
    return True
