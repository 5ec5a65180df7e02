"""Reading the CSV exports of portals and donation-management systems into typed rows.

This layer only parses: it touches no model and writes nothing. ``open_import`` detects the
encoding, checks the header against a column mapping (one of the presets in ``styles`` or one a
municipality saved) and yields, for every record, either a ``ParsedRow`` or a ``RowError``.
"""

from donations_sync.imports.encoding import detect_encoding
from donations_sync.imports.reader import (
    CsvImport,
    DonationBlock,
    DonorBlock,
    GiftBlock,
    ImportFileError,
    ParsedRow,
    RowError,
    open_import,
)
from donations_sync.imports.styles import PRESETS, Mapping

__all__ = [
    "PRESETS",
    "CsvImport",
    "DonationBlock",
    "DonorBlock",
    "GiftBlock",
    "ImportFileError",
    "Mapping",
    "ParsedRow",
    "RowError",
    "detect_encoding",
    "open_import",
]
