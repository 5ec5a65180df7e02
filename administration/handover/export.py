"""Write everything of one municipality to a zip: CSV (UTF-8 and CP932) and JSON Lines per
table, a README with the schema, the files, and a SHA-256 manifest.

The zip is written straight to disk: each table is read with a server-side cursor and written
to temporary files, then copied into the zip (hashed on the way); nothing is held whole in
memory. The format is described in ``README`` (built here, so it always matches the data).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from django.apps import apps
from django.core.files.storage import default_storage
from django.db import models
from django.utils import timezone

from administration.handover import registry

CHUNK = 2000
BINARY_CHUNK = 100
COPY_BLOCK = 1024 * 1024

# Characters whose CP932 form has another Unicode code point than the one Python's codec
# expects (the JIS X 0208 / Microsoft mapping differences): written as their CP932 twin.
CP932_TWINS = str.maketrans(
    {
        "\u301c": "\uff5e",  # 〜 WAVE DASH → ～
        "\u2016": "\u2225",  # ‖ → ∥
        "\u2212": "\uff0d",  # − MINUS SIGN → －
        "\u00a2": "\uffe0",  # ¢
        "\u00a3": "\uffe1",  # £
        "\u00ac": "\uffe2",  # ¬
        "\u2014": "\u2015",  # — EM DASH → ―
    }
)
# What stands for a character CP932 cannot hold (old-form kanji such as 𠮷 or 鷗): the geta
# mark, as Japanese systems print it. Every such replacement is listed in
# cp932_substitutions.csv with the original value, so nothing is lost.
GETA = "〓"

FILE_SUFFIX = {"ticketmail.InboundMessage.raw": ".eml"}

TYPE_NAMES = {
    "AutoField": "integer",
    "BigAutoField": "integer",
    "SmallAutoField": "integer",
    "IntegerField": "integer",
    "BigIntegerField": "integer",
    "SmallIntegerField": "integer",
    "PositiveIntegerField": "integer",
    "PositiveBigIntegerField": "integer",
    "PositiveSmallIntegerField": "integer",
    "ForeignKey": "integer",
    "OneToOneField": "integer",
    "BooleanField": "boolean",
    "DateTimeField": "timestamp",
    "DateField": "date",
    "TimeField": "time",
    "DecimalField": "decimal",
    "FloatField": "float",
    "JSONField": "json",
    "BinaryField": "file",
    "FileField": "file",
    "ImageField": "file",
    "UUIDField": "uuid",
}

STAFF_COLUMNS = ("id", "username", "display_name", "role")


@dataclass
class TableResult:
    name: str
    label: str
    description: str
    rows: int
    columns: list[dict[str, str]]
    scope: str


@dataclass
class ExportResult:
    path: Path
    sha256: str
    size: int
    row_counts: dict[str, int]
    tables: list[TableResult] = field(default_factory=list)


def table_file_name(model: type[models.Model]) -> str:
    return model._meta.db_table


def column_type(f: models.Field) -> str:
    return TYPE_NAMES.get(f.get_internal_type(), "text")


def column_description(f: models.Field) -> str:
    text = str(f.verbose_name)
    if f.is_relation and f.related_model is not None:
        target = f.related_model._meta
        text = f"{text}（→ {target.db_table}.{target.pk.attname}、{target.verbose_name}）"
    return text


class _Cp932:
    """Makes a value CP932-safe and notes what had to be replaced."""

    def __init__(self, writer: Any) -> None:
        self.writer = writer
        self.count = 0

    def __call__(self, table: str, pk: Any, column: str, text: str) -> str:
        if text.isascii():
            return text
        twin = text.translate(CP932_TWINS)
        try:
            twin.encode("cp932")
            return twin
        except UnicodeEncodeError:
            pass
        out = []
        for ch in twin:
            try:
                ch.encode("cp932")
                out.append(ch)
            except UnicodeEncodeError:
                out.append(GETA)
        safe = "".join(out)
        missing = " ".join(f"U+{ord(c):04X}" for c in twin if c not in safe)
        self.writer.writerow([table, pk, column, text, safe, missing])
        self.count += 1
        return safe


def _safe_name(name: str) -> str:
    name = os.path.basename(name.replace("\\", "/"))
    name = re.sub(r"[\x00-\x1f/]", "_", name).strip() or "file"
    return name[:150]


class _Zip:
    """A zip written entry by entry from disk, recording each entry's SHA-256."""

    def __init__(self, path: Path) -> None:
        self.zip = zipfile.ZipFile(
            path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1, allowZip64=True
        )
        self.sums: list[tuple[str, str]] = []

    def add_file(self, name: str, source: Path) -> None:
        digest = hashlib.sha256()
        with source.open("rb") as src, self.zip.open(name, "w", force_zip64=True) as dst:
            while block := src.read(COPY_BLOCK):
                digest.update(block)
                dst.write(block)
        self.sums.append((digest.hexdigest(), name))

    def add_stream(self, name: str, blocks: Iterable[bytes]) -> None:
        digest = hashlib.sha256()
        with self.zip.open(name, "w", force_zip64=True) as dst:
            for block in blocks:
                digest.update(block)
                dst.write(block)
        self.sums.append((digest.hexdigest(), name))

    def add_bytes(self, name: str, data: bytes) -> None:
        self.add_stream(name, [data])

    def close(self) -> None:
        self.zip.close()


def _storage_blocks(name: str) -> Iterable[bytes]:
    with default_storage.open(name, "rb") as fh:
        while block := fh.read(COPY_BLOCK):
            yield block


class _TableWriter:
    def __init__(self, tmp: Path, name: str) -> None:
        self.paths = {
            "utf8": tmp / f"{name}.utf8.csv",
            "cp932": tmp / f"{name}.cp932.csv",
            "jsonl": tmp / f"{name}.jsonl",
        }
        self._utf8 = self.paths["utf8"].open("w", encoding="utf-8", newline="")
        self._cp932 = self.paths["cp932"].open("w", encoding="cp932", newline="")
        self._jsonl = self.paths["jsonl"].open("w", encoding="utf-8", newline="\n")
        self.utf8 = csv.writer(self._utf8)
        self.cp932 = csv.writer(self._cp932)

    def jsonl(self, record: dict[str, Any]) -> None:
        self._jsonl.write(json.dumps(record, ensure_ascii=False, default=str))
        self._jsonl.write("\n")

    def close(self) -> None:
        for fh in (self._utf8, self._cp932, self._jsonl):
            fh.close()


_TOKYO = ZoneInfo("Asia/Tokyo")


def _json_converter(f: models.Field) -> Callable[[Any], Any] | None:
    """How a column's database value becomes its JSON value (None: as it is)."""
    kind = column_type(f)
    if kind == "timestamp":
        return lambda v: v.astimezone(_TOKYO).isoformat() if v.tzinfo else v.isoformat()
    if kind in ("date", "time"):
        return lambda v: v.isoformat()
    if kind in ("decimal", "uuid"):
        return str
    return None


def _text_converter(f: models.Field) -> Callable[[Any], str]:
    """How a column's JSON value (never None, never a str) is written in the CSV."""
    kind = column_type(f)
    if kind == "boolean":
        return lambda v: "true" if v else "false"
    if kind == "json":
        return lambda v: json.dumps(v, ensure_ascii=False)
    return str


def _cp932_row(cp932: _Cp932, table: str, attnames: list[str], texts: list[str]) -> list[str]:
    """The row for the CP932 file: one check per row, value by value only when needed."""
    joined = "\x00".join(texts)
    if joined.isascii():
        return texts
    twin = joined.translate(CP932_TWINS)
    try:
        twin.encode("cp932")
    except UnicodeEncodeError:
        pk = texts[0]
        return [cp932(table, pk, a, t) for a, t in zip(attnames, texts, strict=True)]
    return twin.split("\x00")


def _export_queryset(
    *,
    zf: _Zip,
    tmp: Path,
    model: type[models.Model],
    queryset: models.QuerySet,
    columns: list[models.Field],
    cp932: _Cp932,
    on_rows: Callable[[int], None],
) -> tuple[int, list[models.Field]]:
    """Rows written, and the columns in the order written."""
    label = model._meta.label
    name = table_file_name(model)
    pk_name = model._meta.pk.attname
    attnames = [f.attname for f in columns]
    # The primary key first, so that a CP932 substitution can name its row.
    if pk_name in attnames:
        index = attnames.index(pk_name)
        columns = [columns[index], *columns[:index], *columns[index + 1 :]]
        attnames = [f.attname for f in columns]
    binary = [i for i, f in enumerate(columns) if f.get_internal_type() == "BinaryField"]
    files = [i for i, f in enumerate(columns) if isinstance(f, models.FileField)]
    converters = [(i, c) for i, f in enumerate(columns) if (c := _json_converter(f))]
    to_text = [_text_converter(f) for f in columns]
    has_filename = "filename" in {f.name for f in model._meta.concrete_fields}
    writer = _TableWriter(tmp, name)
    writer.utf8.writerow(attnames)
    writer.cp932.writerow(attnames)
    fetch = attnames + (["filename"] if has_filename and "filename" not in attnames else [])
    width = len(attnames)
    rows = 0
    chunk = BINARY_CHUNK if binary or files else CHUNK
    try:
        for fetched in queryset.order_by(pk_name).values_list(*fetch).iterator(chunk_size=chunk):
            values = list(fetched[:width])
            pk = values[0]
            for i in binary:
                data = values[i]
                column = attnames[i]
                if data:
                    suffix = FILE_SUFFIX.get(f"{label}.{column}", "")
                    base = f"{pk}{suffix}"
                    if has_filename and not suffix:
                        base = f"{pk}_{_safe_name(fetched[fetch.index('filename')])}"
                    entry = f"files/{name}/{column}/{base}"
                    zf.add_bytes(entry, bytes(data))
                    values[i] = entry
                else:
                    values[i] = None
            for i in files:
                stored = values[i]
                values[i] = None
                if stored and default_storage.exists(stored):
                    entry = f"files/{name}/{attnames[i]}/{pk}/{_safe_name(stored)}"
                    zf.add_stream(entry, _storage_blocks(stored))
                    values[i] = entry
            for i, convert in converters:
                if values[i] is not None:
                    values[i] = convert(values[i])
            texts = [
                "" if v is None else v if v.__class__ is str else fn(v)
                for v, fn in zip(values, to_text, strict=True)
            ]
            writer.utf8.writerow(texts)
            writer.cp932.writerow(_cp932_row(cp932, name, attnames, texts))
            writer.jsonl(dict(zip(attnames, values, strict=True)))
            rows += 1
            if rows % 20000 == 0:
                on_rows(rows)
    finally:
        writer.close()
    zf.add_file(f"csv/utf-8/{name}.csv", writer.paths["utf8"])
    zf.add_file(f"csv/cp932/{name}.csv", writer.paths["cp932"])
    zf.add_file(f"jsonl/{name}.jsonl", writer.paths["jsonl"])
    for path in writer.paths.values():
        path.unlink()
    return rows, columns


def _columns_doc(columns: list[models.Field]) -> list[dict[str, str]]:
    return [
        {"name": f.attname, "type": column_type(f), "description": column_description(f)}
        for f in columns
    ]


def _referenced_ids(
    tables: list[registry.Table], target: type[models.Model], municipality_id: int, root_ids: dict
) -> set[Any]:
    ids: set[Any] = set()
    for table in tables:
        for f in table.model._meta.concrete_fields:
            if (f.many_to_one or f.one_to_one) and f.related_model is target:
                qs = table.model._base_manager.filter(
                    **table.filter_kwargs(municipality_id, root_ids)
                ).exclude(**{f.attname: None})
                ids.update(qs.values_list(f.attname, flat=True).distinct())
    return ids


def write_export(
    *,
    municipality_id: int,
    destination: Path,
    progress: Callable[[str, int, int, int], None] = lambda *a: None,
) -> ExportResult:
    """Write the zip to ``destination`` (a temporary name first, renamed when complete)."""
    from crm.models import Municipality

    municipality = Municipality.objects.get(pk=municipality_id)
    tables = [t for t in registry.owned_tables()]
    root_ids = {m._meta.label: fn(municipality_id) for m, fn in registry.roots().items()}
    shared = [apps.get_model(label) for label in registry.REFERENCED_SHARED]
    user_model = apps.get_model("crm.User")
    total = len(tables) + len(shared) + 1
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".partial")
    results: list[TableResult] = []
    rows_written = 0
    done = 0
    # Named after the export, so a deletion finds what a killed export left behind.
    with tempfile.TemporaryDirectory(
        dir=destination.parent, prefix=f"{destination.stem}-tmp-"
    ) as tmpdir:
        tmp = Path(tmpdir)
        zf = _Zip(partial)
        subs_path = tmp / "cp932_substitutions.csv"
        with subs_path.open("w", encoding="utf-8", newline="") as subs_fh:
            subs = csv.writer(subs_fh)
            subs.writerow(["table", "id", "column", "original", "cp932", "replaced"])
            cp932 = _Cp932(subs)

            def export_one(model, queryset, columns, scope) -> None:
                nonlocal rows_written, done
                label = model._meta.label
                progress(label, done, total, rows_written)
                base = rows_written
                count, written = _export_queryset(
                    zf=zf,
                    tmp=tmp,
                    model=model,
                    queryset=queryset,
                    columns=columns,
                    cp932=cp932,
                    on_rows=lambda n: progress(label, done, total, base + n),
                )
                rows_written += count
                done += 1
                results.append(
                    TableResult(
                        name=table_file_name(model),
                        label=label,
                        description=registry.table_description(model),
                        rows=count,
                        columns=_columns_doc(written),
                        scope=scope,
                    )
                )
                progress(label, done, total, rows_written)

            for table in tables:
                qs = table.model._base_manager.filter(
                    **table.filter_kwargs(municipality_id, root_ids)
                )
                export_one(table.model, qs, registry.export_columns(table.model), "owned")
            for model in shared:
                ids = _referenced_ids(tables, model, municipality_id, root_ids)
                qs = model._base_manager.filter(pk__in=ids)
                export_one(model, qs, registry.export_columns(model), "referenced")
            staff_ids = _referenced_ids(tables, user_model, municipality_id, root_ids)
            staff_columns = [user_model._meta.get_field(n) for n in STAFF_COLUMNS]
            export_one(
                user_model,
                user_model._base_manager.filter(pk__in=staff_ids),
                staff_columns,
                "referenced",
            )
        zf.add_file("cp932_substitutions.csv", subs_path)
        manifest = {
            "format": "furusato-handover/1",
            "municipality": {
                "id": municipality.pk,
                "code": municipality.code,
                "name": municipality.name,
            },
            "created_at": timezone.localtime().isoformat(),
            "cp932_substitutions": cp932.count,
            "tables": [
                {
                    "name": r.name,
                    "model": r.label,
                    "description": r.description,
                    "scope": r.scope,
                    "rows": r.rows,
                    "columns": r.columns,
                }
                for r in results
            ],
        }
        zf.add_bytes(
            "manifest.json", json.dumps(manifest, ensure_ascii=False, indent=2).encode("utf-8")
        )
        zf.add_bytes("README.md", readme(municipality, results, cp932.count).encode("utf-8"))
        sums = "".join(f"{digest}  {name}\n" for digest, name in zf.sums)
        zf.zip.writestr("SHA256SUMS", sums.encode("utf-8"))
        zf.close()
    digest = hashlib.sha256()
    with partial.open("rb") as fh:
        while block := fh.read(COPY_BLOCK):
            digest.update(block)
    os.replace(partial, destination)
    return ExportResult(
        path=destination,
        sha256=digest.hexdigest(),
        size=destination.stat().st_size,
        row_counts={r.label: r.rows for r in results},
        tables=results,
    )


def readme(municipality: Any, results: list[TableResult], substitutions: int) -> str:
    out = io.StringIO()
    w = out.write
    w(f"# 引継ぎデータ: {municipality.name}（団体コード {municipality.code}）\n\n")
    w(f"作成日時: {timezone.localtime():%Y年%m月%d日 %H:%M}（日本時間）\n\n")
    w("## 形式\n\n")
    w(
        "- 表ごとに同じ内容を3つの形で収めています。\n"
        "  - `csv/utf-8/<表>.csv`: CSV（UTF-8、BOMなし、改行CRLF、1行目は列名、RFC 4180 の引用）\n"
        "  - `csv/cp932/<表>.csv`: 同じCSVのCP932（Shift_JIS、Windows/Excel向け）版\n"
        "  - `jsonl/<表>.jsonl`: JSON Lines（UTF-8、1行1レコード、列名をキーとするオブジェクト）\n"
        "- 値: 日時は ISO 8601（日本時間 +09:00）、日付は YYYY-MM-DD、真偽値は true/false、"
        "空欄（JSONでは null）は値なし、json 型はCSVではJSON文字列。\n"
        "- 外部キー列（`…_id`）は参照先の表の id を指します（列の説明に参照先を記載）。\n"
        "- file 型の列は zip 内のファイルのパス（`files/<表>/<列>/…`）です。"
        "受信メールの原文は `.eml`（RFC 5322 そのまま）、添付ファイルは元のファイル名で収めています。"
        "通話録音は音声を保持しておらず、録音のメタデータ（録音SID・URL・録音時間）を"
        " `telephony_call` 表に収めています。\n"
        "- CP932 版: CP932 で表せない文字のうち、〜（波ダッシュ）・−（マイナス）など対応する文字が"
        "CP932 にあるものはその文字に、ないもの（𠮷・鷗などの一部の旧字・異体字、絵文字）は「〓」に"
        "置き換えています。置き換えた値はすべて `cp932_substitutions.csv`（UTF-8）に元の値とともに"
        f"記録しています（今回 {substitutions} 件）。正本は UTF-8 版と JSON Lines 版です。\n"
        "- `SHA256SUMS`: zip 内の各ファイルの SHA-256（`sha256sum -c SHA256SUMS` で検証できます）。"
        "`manifest.json`: 表・行数・列の機械可読な一覧。\n"
        "- 範囲 owned はこの自治体の行すべて、referenced は運営者共通の表のうちこの自治体の行が"
        "参照している行だけです（配送業者・問合せ分類・後処理コード・担当者名）。\n\n"
    )
    w("## 表の一覧\n\n| 表 | 内容 | 範囲 | 行数 |\n|---|---|---|---:|\n")
    for r in results:
        w(f"| `{r.name}` | {r.description} | {r.scope} | {r.rows:,} |\n")
    w("\n## 列\n")
    for r in results:
        w(f"\n### `{r.name}`（{r.description}）\n\n| 列 | 型 | 説明 |\n|---|---|---|\n")
        for c in r.columns:
            w(f"| `{c['name']}` | {c['type']} | {c['description']} |\n")
    return out.getvalue()
