"""What an attachment really is (by its bytes, not its name), and whether we keep it."""

from __future__ import annotations

import re
import unicodedata
import zipfile
from dataclasses import dataclass
from io import BytesIO

# (magic prefix, offset, type). Order matters: longer/more specific first.
_MAGIC: list[tuple[bytes, int, str]] = [
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"%PDF-", 0, "application/pdf"),
    (b"MZ", 0, "application/x-msdownload"),
    (b"\x7fELF", 0, "application/x-executable"),
    (b"\xca\xfe\xba\xbe", 0, "application/x-mach-binary"),
    (b"\xcf\xfa\xed\xfe", 0, "application/x-mach-binary"),
    (b"\xfe\xed\xfa\xcf", 0, "application/x-mach-binary"),
    (b"#!", 0, "text/x-script"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", 0, "application/x-ole-storage"),  # old Office / MSI
    (b"PK\x03\x04", 0, "application/zip"),
    (b"Rar!\x1a\x07", 0, "application/x-rar"),
    (b"7z\xbc\xaf\x27\x1c", 0, "application/x-7z-compressed"),
    (b"II*\x00", 0, "image/tiff"),
    (b"MM\x00*", 0, "image/tiff"),
    (b"BM", 0, "image/bmp"),
]

EXECUTABLE_TYPES = {
    "application/x-msdownload",
    "application/x-executable",
    "application/x-mach-binary",
    "text/x-script",
    "application/java-archive",
    "application/x-ms-shortcut",
}
# Refused whatever the bytes say: Windows runs these by name alone.
EXECUTABLE_EXTENSIONS = {
    "exe",
    "com",
    "scr",
    "pif",
    "bat",
    "cmd",
    "vbs",
    "vbe",
    "js",
    "jse",
    "wsf",
    "wsh",
    "msi",
    "msp",
    "ps1",
    "psm1",
    "hta",
    "cpl",
    "jar",
    "lnk",
    "reg",
    "dll",
    "sys",
    "iso",
    "img",
    "vhd",
    "vhdx",
    "app",
    "sh",
    "apk",
    "docm",
    "xlsm",
    "pptm",
}

ALLOWED_TYPES = {
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/heic",
    "image/webp",
    "image/tiff",
    "image/bmp",
    "application/pdf",
    "text/plain",
    "text/csv",
    "application/zip",  # Office documents are zip containers; checked for executables inside
    "application/x-ole-storage",
    "message/rfc822",
}


def sniff(data: bytes) -> str:
    head = data[:64]
    for magic, offset, ctype in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return ctype
    if head[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1"):
        return "image/heic"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if _looks_like_text(data[:4096]):
        return "text/plain"
    return "application/octet-stream"


def _looks_like_text(sample: bytes) -> bool:
    if not sample:
        return True
    if b"\x00" in sample:
        return False
    control = sum(1 for b in sample if b < 0x09 or 0x0E <= b < 0x20 and b != 0x1B)
    return control / len(sample) < 0.02


def _extension(filename: str) -> str:
    name = unicodedata.normalize("NFKC", filename).strip().rstrip(". ").lower()
    return name.rsplit(".", 1)[-1] if "." in name else ""


def _zip_has_executable(data: bytes) -> bool:
    try:
        with zipfile.ZipFile(BytesIO(data)) as archive:
            for info in archive.infolist()[:500]:
                if _extension(info.filename) in EXECUTABLE_EXTENSIONS:
                    return True
                if info.filename.lower().endswith("vbaproject.bin"):
                    return True  # Office macros
                if info.file_size < 1_000_000 and not info.is_dir():
                    with archive.open(info) as member:
                        if sniff(member.read(64)) in EXECUTABLE_TYPES - {"text/x-script"}:
                            return True
    except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError, EOFError):
        return True  # encrypted or malformed archives cannot be checked, so are not kept
    return False


@dataclass
class Verdict:
    sniffed_type: str
    refused_reason: str = ""
    restricted: bool = False

    @property
    def kept(self) -> bool:
        return not self.refused_reason


# Hints that an image is a My Number card or notification (個人番号カード・通知カード).
_MY_NUMBER_HINTS = re.compile(
    r"マイナンバー|まいなんばー|個人番号|mynumber|my_number|my-number|通知カード|kojinbango",
    re.IGNORECASE,
)


def looks_like_my_number(filename: str, context_text: str = "") -> bool:
    name = unicodedata.normalize("NFKC", filename)
    if _MY_NUMBER_HINTS.search(name):
        return True
    return bool(_MY_NUMBER_HINTS.search(unicodedata.normalize("NFKC", context_text)))


def judge(
    *, filename: str, declared_type: str, data: bytes, max_bytes: int, context_text: str = ""
) -> Verdict:
    sniffed = sniff(data)
    if declared_type == "message/rfc822":
        sniffed = "message/rfc822"
    verdict = Verdict(sniffed_type=sniffed)
    ext = _extension(filename)
    if len(data) > max_bytes:
        verdict.refused_reason = f"サイズ上限（{max_bytes // (1024 * 1024)}MB）を超えています"
    elif sniffed in EXECUTABLE_TYPES or ext in EXECUTABLE_EXTENSIONS:
        verdict.refused_reason = "実行形式のファイルは受け付けません"
    elif sniffed == "application/zip" and _zip_has_executable(data):
        verdict.refused_reason = "実行形式・マクロを含む圧縮ファイルは受け付けません"
    elif sniffed not in ALLOWED_TYPES:
        verdict.refused_reason = f"受け付けない形式です（{sniffed}）"
    if sniffed.startswith("image/") or sniffed == "application/pdf":
        verdict.restricted = looks_like_my_number(filename, context_text)
    return verdict
