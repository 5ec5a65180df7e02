"""Which encoding an export is in, and a streaming text view of the binary file."""

from __future__ import annotations

import codecs
import io
from typing import BinaryIO

# Enough to hold the header and many rows, so a stray multi-byte sequence decides.
SAMPLE_BYTES = 256 * 1024

UTF8 = "utf-8-sig"  # also reads UTF-8 without a BOM
CP932 = "cp932"  # Windows Shift_JIS: what the portals and management systems write


def detect_encoding(sample: bytes) -> str:
    """UTF-8 (with or without BOM) if the sample decodes strictly as UTF-8, else CP932.

    Shift_JIS text is almost never valid UTF-8, while UTF-8 Japanese is rarely valid CP932
    without also being valid UTF-8, so trying UTF-8 first is the safe order.
    """
    if sample.startswith(codecs.BOM_UTF8):
        return UTF8
    try:
        # final=False: the sample may end in the middle of a multi-byte character.
        codecs.getincrementaldecoder("utf-8")("strict").decode(sample, final=False)
        return UTF8
    except UnicodeDecodeError:
        return CP932


def open_text(binary: BinaryIO, encoding: str | None = None) -> tuple[io.TextIOWrapper, str]:
    """Wrap the binary file in a decoding text stream, without reading it into memory.

    Undecodable bytes become U+FFFD so the reader can reject the one row holding them with
    its line and column instead of failing the whole file at an unknown place.
    """
    if encoding is None:
        encoding = detect_encoding(_sample(binary))
    elif codecs.lookup(encoding).name == "utf-8":
        encoding = UTF8  # an explicit "utf-8" must still swallow a BOM
    # newline="" is what the csv module needs for quoted fields holding newlines.
    text = io.TextIOWrapper(binary, encoding=encoding, errors="replace", newline="")
    return text, encoding


def _sample(binary: BinaryIO) -> bytes:
    if binary.seekable():
        start = binary.tell()
        sample = binary.read(SAMPLE_BYTES)
        binary.seek(start)
        return sample
    # An upload stream or pipe: peek through a buffer large enough for the sample.
    return binary.peek(SAMPLE_BYTES)[:SAMPLE_BYTES]  # type: ignore[attr-defined]
