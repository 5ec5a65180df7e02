"""A report's snapshot as titled tables: one per section, shared by the XLSX and the CSV."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list[Any]] = field(default_factory=list)


def hours(seconds: float | None) -> float | None:
    return round(seconds / 3600, 2) if seconds is not None else None


def report_tables(data: dict[str, Any], *, comments: str = "", measures: str = "") -> list[Table]:
    inq, times, calls = data["inquiries"], data["times"], data["calls"]
    complaints, donations, backlog = data["complaints"], data["donations"], data["backlog"]
    summary = Table(
        "概要",
        ["項目", "値"],
        [
            ["自治体", data["municipality"]["name"]],
            ["対象月", data["month_label"]],
            ["問合せ件数", inq["total"]],
            ["苦情件数", complaints["count"]],
            ["月末未解決", backlog["total"]],
            ["初回回答時間 中央値（営業時間・時間）", hours(times["first_response"]["p50"])],
            ["初回回答時間 90%値（営業時間・時間）", hours(times["first_response"]["p90"])],
            ["解決時間 中央値（営業時間・時間）", hours(times["resolution"]["p50"])],
            ["解決時間 90%値（営業時間・時間）", hours(times["resolution"]["p90"])],
            ["着信数", calls["offered"]],
            ["応答数", calls["answered"]],
            ["放棄率（%）", calls["abandon_rate"]],
            ["寄附件数", donations["count"]],
            ["寄附金額（円）", donations["amount"]],
        ],
    )
    tables = [summary]
    tables.append(
        Table("分類別", ["分類", "件数"], [[r["label"], r["count"]] for r in inq["by_category"]])
    )
    tables.append(
        Table(
            "受付経路別",
            ["受付経路", "件数"],
            [[r["label"], r["count"]] for r in inq["by_channel"]],
        )
    )
    tables.append(
        Table(
            "問合せ者別",
            ["問合せ者", "件数"],
            [[r["label"], r["count"]] for r in inq["by_requester"]],
        )
    )
    tables.append(
        Table(
            "分類×経路×問合せ者",
            ["分類", "受付経路", "問合せ者", "件数"],
            [[r["category"], r["channel"], r["requester_type"], r["count"]] for r in inq["cube"]],
        )
    )
    tables.append(Table("日別", ["日付", "件数"], [[r["day"], r["count"]] for r in inq["daily"]]))
    tables.append(
        Table("時間帯別", ["時", "件数"], [[f"{r['hour']}時", r["count"]] for r in inq["hourly"]])
    )
    tables.append(
        Table(
            "対応時間",
            ["指標", "件数", "中央値（時間）", "90%値（時間）"],
            [
                [
                    "初回回答時間（営業時間）",
                    times["first_response"]["count"],
                    hours(times["first_response"]["p50"]),
                    hours(times["first_response"]["p90"]),
                ],
                [
                    "解決時間（営業時間）",
                    times["resolution"]["count"],
                    hours(times["resolution"]["p50"]),
                    hours(times["resolution"]["p90"]),
                ],
            ],
        )
    )
    tables.append(
        Table(
            "月末未解決",
            ["経過", "件数"],
            [[r["label"], r["count"]] for r in backlog["ageing"]] + [["合計", backlog["total"]]],
        )
    )
    tables.append(
        Table(
            "苦情",
            ["項目", "値"],
            [
                ["苦情件数", complaints["count"]],
                ["対象分類", "・".join(complaints["categories"])],
                ["当月寄附件数", complaints["donations"]],
                ["当月発送件数", complaints["shipments"]],
                ["寄附1,000件あたり", complaints["per_1000_donations"]],
                ["発送1,000件あたり", complaints["per_1000_shipments"]],
            ]
            + [["返礼品：" + r["label"], r["count"]] for r in complaints["top_gift_items"]]
            + [["事業者：" + r["label"], r["count"]] for r in complaints["top_providers"]]
            + [["配送業者：" + r["label"], r["count"]] for r in complaints["top_carriers"]],
        )
    )
    tables.append(
        Table(
            "電話",
            ["指標", "値"],
            [
                ["着信数（受付時間内）", calls["offered"]],
                ["応答数", calls["answered"]],
                ["放棄数（5秒未満を除く）", calls["abandoned"]],
                ["5秒未満の放棄", calls["short_abandons"]],
                ["放棄率（%）", calls["abandon_rate"]],
                ["平均応答時間（秒）", calls["asa_seconds"]],
                [
                    f"サービスレベル（{calls['service_level_seconds']}秒以内・%）",
                    calls["service_level"],
                ],
                ["平均処理時間（秒）", calls["aht_seconds"]],
                ["平均通話時間（秒）", calls["avg_talk_seconds"]],
                ["平均後処理時間（秒）", calls["avg_wrap_seconds"]],
                ["時間外着信", calls["after_hours"]],
                ["時間外切断", calls["after_hours_hangups"]],
                ["留守番電話", calls["voicemails"]],
                ["折り返し電話", calls["callbacks"]],
                ["折り返し電話（通話）", calls["callbacks_connected"]],
            ],
        )
    )
    tables.append(
        Table(
            "寄附・発送・受領証明書",
            ["項目", "件数", "金額（円）"],
            [[r["label"], r["count"], r["amount"]] for r in donations["by_portal"]]
            + [
                ["寄附 合計", donations["count"], donations["amount"]],
                ["入金", donations["paid"], donations["paid_amount"]],
                ["取消", donations["cancelled"], None],
                ["発送", donations["shipped"], None],
                ["配達完了", donations["delivered"], None],
                ["返送", donations["returned"], None],
                [
                    "再送（代品）の発送（承認月の件数・費用は「再送」）",
                    donations["reshipped"],
                    None,
                ],
                ["受領証明書発行", donations["receipts_issued"], None],
                ["ワンストップ申請書受付", donations["one_stop_received"], None],
            ],
        )
    )
    tables.append(
        Table(
            "前月比・前年同月比",
            ["指標", "当月", "前月", "前月比（%）", "前年同月", "前年同月比（%）"],
            [
                [
                    r["label"],
                    r["value"],
                    r["previous"]["before"],
                    r["previous"]["pct"],
                    r["year_ago"]["before"],
                    r["year_ago"]["pct"],
                ]
                for r in data["comparison"]
            ],
        )
    )
    tables.append(
        Table(
            "苦情の頻出語", ["語", "件数"], [[r["word"], r["count"]] for r in complaints["words"]]
        )
    )
    tables += escalation_tables(data["escalations"])
    tables += reshipment_tables(data["reshipments"])
    tables.append(
        Table(
            "所見・満足度向上の方策",
            ["項目", "内容"],
            [["所見", comments], ["満足度向上の方策", measures]],
        )
    )
    return tables


def escalation_tables(esc: dict[str, Any]) -> list[Table]:
    """市への報告: counts and times, then breakdowns (a snapshot from before escalation's
    figures were in the report holds only a note)."""
    if not esc.get("available"):
        return [Table("エスカレーション", ["備考"], [[esc.get("note", "")]])]
    return [
        Table(
            "エスカレーション",
            ["項目", "値"],
            [
                ["報告件数", esc["opened"]],
                ["うち緊急", esc["urgent"]],
                ["確認済", esc["acknowledged"]],
                ["月末時点で未確認", esc["unacknowledged"]],
                ["完了", esc["closed"]],
                ["初回通知まで 平均（分）", esc["avg_minutes_to_notify"]],
                ["初回通知まで 中央値（分）", esc["notify_p50"]],
                ["初回通知まで 90%値（分）", esc["notify_p90"]],
                ["市の確認まで 平均（分）", esc["avg_minutes_to_acknowledge"]],
                ["市の確認まで 中央値（分）", esc["acknowledge_p50"]],
                ["市の確認まで 90%値（分）", esc["acknowledge_p90"]],
            ],
        ),
        Table(
            "エスカレーション（内訳）",
            ["区分", "項目", "件数"],
            [["種別", r["label"], r["count"]] for r in esc["kinds"]]
            + [["分類", r["label"], r["count"]] for r in esc["categories"]]
            + [["重要度", r["label"], r["count"]] for r in esc["severities"]],
        ),
        Table(
            "エスカレーション（通知手段）",
            ["手段", "通知数", "送信済", "失敗・結果不明"],
            [[r["label"], r["attempts"], r["sent"], r["failed"]] for r in esc["channels"]],
        ),
    ]


def reshipment_tables(reship: dict[str, Any]) -> list[Table]:
    """再送: the month's totals, then by reason and fault party (a snapshot from before
    re-shipments were counted holds only its note)."""
    if not reship.get("available"):
        return [Table("再送", ["備考"], [[reship.get("note", "")]])]
    tables = []
    if "count" in reship:
        tables.append(
            Table(
                "再送（合計）",
                ["項目", "値"],
                [
                    ["再送件数", reship["count"]],
                    ["費用（円）", reship["cost"]],
                    ["うち市の負担（件）", reship.get("billable_count")],
                    ["うち市の負担（円）", reship.get("billable_cost")],
                    [
                        f"{reship.get('billable_share_basis', '市の負担の割合')}（%）",
                        reship.get("billable_share"),
                    ],
                ],
            )
        )
    tables.append(
        Table(
            "再送",
            ["区分", "項目", "件数", "費用（円）", "市の負担（件）"],
            [
                ["理由", r["label"], r["count"], r.get("cost"), r.get("billable")]
                for r in reship.get("by_reason", [])
            ]
            + [
                ["責任区分", r["label"], r["count"], r.get("cost"), r.get("billable")]
                for r in reship.get("by_fault", [])
            ],
        )
    )
    return tables
