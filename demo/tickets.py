"""Demo inquiries for ``manage.py seed_demo``: a few weeks of a call center's work per city.

Mail inquiries come from ``demo.mail`` through the real intake; the ones here arrived by
phone, FAX, letter, web form or a portal review, so their replies are not mailed.

Everything is written through ``tickets.services`` as agents would have written it; the
services stamp their rows with ``timezone.now()``, so ``DemoClock`` sets that clock to each
moment of the seeded history while it is written.
"""

from __future__ import annotations

import datetime
import random
import zoneinfo
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from crm.models import Carrier, Donor, Municipality, Provider, User
from donations_sync.models import Donation, Shipment
from tickets import services
from tickets.models import Inquiry, Status

TOKYO = zoneinfo.ZoneInfo("Asia/Tokyo")
HISTORY_DAYS = 28


class DemoClock:
    """``django.utils.timezone.now`` answers the seeded moment while ``running()``.

    Every service, model default and ``auto_now`` field reads the time through that function,
    so the history gets the timestamps it would have had if it had happened then.
    """

    def __init__(self, start: datetime.datetime) -> None:
        self.at = start

    def set(self, at: datetime.datetime) -> datetime.datetime:
        self.at = at
        return at

    def advance(self, **delta: float) -> datetime.datetime:
        self.at = self.at + datetime.timedelta(**delta)
        return self.at

    @contextmanager
    def running(self) -> Iterator[DemoClock]:
        original = timezone.now
        timezone.now = lambda: self.at  # type: ignore[assignment]
        try:
            yield self
        finally:
            timezone.now = original  # type: ignore[assignment]


def demo_now(today: datetime.date) -> datetime.datetime:
    """The end of the seeded history: late afternoon of ``today``, never after the real now."""
    end = datetime.datetime.combine(today, datetime.time(17, 40), tzinfo=TOKYO)
    return min(end, timezone.now()) if today == timezone.localdate() else end


def office_moment(
    rng: random.Random, day: datetime.date, start_hour: int = 9, end_hour: int = 17
) -> datetime.datetime:
    minutes = rng.randrange((end_hour - start_hour) * 60)
    return datetime.datetime.combine(
        day, datetime.time(start_hour + minutes // 60, minutes % 60), tzinfo=TOKYO
    )


def staff_for(municipality: Municipality) -> tuple[list[User], list[User]]:
    """(agents, supervisors) serving the municipality, in a stable order."""
    people = list(
        User.objects.filter(municipalities=municipality, is_active=True).order_by("username")
    )
    agents = [u for u in people if u.role == User.Role.AGENT]
    supervisors = [u for u in people if u.role == User.Role.SUPERVISOR]
    return agents, supervisors


# --- What a ticket is about -----------------------------------------------------------------


@dataclass
class Step:
    """One later action on the ticket: minutes after the previous one, then what."""

    minutes: float
    kind: str  # assign | note | note_shared | reply | message | resolve | close | severity
    text: str = ""


@dataclass
class Scenario:
    channel: str
    requester_type: str
    category: str
    severity: str
    title: str
    description: str
    donor: Donor | None = None
    donations: list[Donation] = field(default_factory=list)
    shipments: list[Shipment] = field(default_factory=list)
    provider: Provider | None = None
    submitter_email: str = ""
    steps: list[Step] = field(default_factory=list)


@dataclass
class Records:
    """The city's records a scenario may pick from (each pick removes the record)."""

    rng: random.Random
    municipality: Municipality
    delivered: list[Shipment]
    pending: list[Shipment]
    returned: list[Shipment]
    receipted: list[Donation]
    one_stop: list[Donation]
    donors: list[Donor]
    providers: list[Provider]
    carriers: list[Carrier]

    @classmethod
    def load(cls, rng: random.Random, municipality: Municipality, today: datetime.date) -> Records:
        shipments = list(
            Shipment.objects.filter(municipality=municipality)
            .select_related("donation__donor", "gift_item__provider", "carrier")
            .order_by("id")
        )
        donations = list(
            Donation.objects.filter(municipality=municipality)
            .select_related("donor")
            .order_by("id")
        )
        records = cls(
            rng=rng,
            municipality=municipality,
            delivered=[s for s in shipments if s.status == Shipment.Status.DELIVERED],
            pending=[
                s
                for s in shipments
                if s.status in (Shipment.Status.PENDING, Shipment.Status.REQUESTED)
            ],
            returned=[s for s in shipments if s.status == Shipment.Status.RETURNED],
            receipted=[d for d in donations if d.receipt_issued_on],
            one_stop=[d for d in donations if d.one_stop_requested],
            donors=list(Donor.objects.filter(municipality=municipality).order_by("id")),
            providers=list(Provider.objects.filter(municipality=municipality).order_by("id")),
            carriers=list(Carrier.objects.order_by("code")),
        )
        for pool in (records.delivered, records.pending, records.returned, records.receipted):
            rng.shuffle(pool)
        # Complaints about a delivery come soon after it: recent deliveries are taken first.
        recent = today - datetime.timedelta(days=45)
        records.delivered.sort(key=lambda s: bool(s.delivered_on and s.delivered_on >= recent))
        rng.shuffle(records.one_stop)
        rng.shuffle(records.donors)
        return records

    @staticmethod
    def take(pool: list) -> Any:
        return pool.pop() if pool else None


def _email_of(donor: Donor | None) -> str:
    if donor is None:
        return ""
    email = donor.emails.order_by("id").first()
    return email.address if email else ""


def _damaged(r: Records) -> Scenario | None:
    shipment = r.take(r.delivered)
    if shipment is None:
        return None
    donor = shipment.donation.donor
    gift = shipment.gift_item.name
    channel = r.rng.choice(["phone", "web_form"])
    return Scenario(
        channel=channel,
        requester_type="donor",
        category="damaged",
        severity=r.rng.choice(["high", "high", "urgent"]),
        title=f"返礼品「{gift}」が破損して届いた",
        description=(
            f"{donor.name}様より。届いた「{gift}」を開けたところ、箱が潰れて中身が一部傷んでいた。"
            "写真はあるので送れる。再送してもらえるか確認したい。"
        ),
        donor=donor,
        donations=[shipment.donation],
        shipments=[shipment],
        provider=shipment.gift_item.provider,
        submitter_email=_email_of(donor),
        steps=[
            Step(6, "assign"),
            Step(
                12,
                "note",
                f"事業者（{shipment.gift_item.provider.name}）に状況確認の連絡済み。"
                "写真の受領待ち。再送の可否は事業者判断。",
            ),
            Step(
                95,
                "reply",
                f"{donor.name}様　このたびはご迷惑をおかけし申し訳ございません。"
                "事業者に確認のうえ、代替品を発送いたします。発送日が決まり次第ご連絡いたします。",
            ),
            Step(60 * 26, "note_shared", "事業者より代替品を明日発送との回答あり。市へ報告済み。"),
            Step(60 * 50, "resolve"),
        ],
    )


def _receipt(r: Records) -> Scenario | None:
    donation = r.take(r.receipted)
    if donation is None:
        return None
    donor = donation.donor
    channel = r.rng.choice(["phone", "phone", "letter", "fax"])
    return Scenario(
        channel=channel,
        requester_type="donor",
        category="receipt",
        severity="normal",
        title="寄附金受領証明書の再発行依頼",
        description=(
            f"{donor.name}様。{donation.donated_at:%Y年%m月}の寄附（{donation.get_portal_display()}"
            f" 受付番号 {donation.portal_order_number or donation.external_id}）の受領証明書を"
            "紛失したため、確定申告用に再発行してほしい。"
        ),
        donor=donor,
        donations=[donation],
        steps=[
            Step(4, "assign"),
            Step(8, "note", "登録住所と本人確認済み。再発行は市の発行処理が必要。"),
            Step(
                30,
                "reply",
                "受領証明書を再発行し、ご登録の住所へ郵送いたします。"
                "到着まで1週間程度お待ちください。",
            ),
            Step(60 * 24 * 3, "close"),
        ],
    )


def _one_stop(r: Records) -> Scenario | None:
    donation = r.take(r.one_stop)
    if donation is None:
        return None
    donor = donation.donor
    return Scenario(
        channel=r.rng.choice(["phone", "web_form"]),
        requester_type="donor",
        category="one_stop",
        severity=r.rng.choice(["normal", "high"]),
        title="ワンストップ特例申請書の提出期限について",
        description=(
            f"{donor.name}様。ワンストップ特例の申請書はいつまでに届けばよいか。"
            "マイナンバーカードの写しは両面必要か。年明けに引っ越し予定がある。"
        ),
        donor=donor,
        donations=[donation],
        submitter_email=_email_of(donor),
        steps=[
            Step(5, "assign"),
            Step(
                20,
                "reply",
                "申請書は翌年1月10日（必着）までにご提出ください。"
                "マイナンバーカードは両面の写しが必要です。"
                "提出後に住所が変わった場合は、1月10日までに変更届出書をご提出ください。",
            ),
            Step(60 * 5, "resolve"),
        ],
    )


def _address_change(r: Records) -> Scenario | None:
    donor = r.take(r.donors)
    if donor is None:
        return None
    return Scenario(
        channel=r.rng.choice(["phone", "fax", "letter"]),
        requester_type="donor",
        category="address_change",
        severity="normal",
        title="転居による住所変更の連絡",
        description=(
            f"{donor.name}様より転居の連絡。"
            "定期便の残りと受領証明書の送付先を新住所に変更してほしい。"
        ),
        donor=donor,
        steps=[
            Step(7, "assign"),
            Step(
                15,
                "note",
                "新住所は本人確認のうえ聞き取り済み。基幹システムへの反映は市の担当者が実施。",
            ),
            Step(60 * 2, "note_shared", "市 企画政策課へ住所変更依頼を送付。"),
        ],
    )


def _delivery_change(r: Records) -> Scenario | None:
    shipment = r.take(r.pending)
    if shipment is None:
        return None
    donor = shipment.donation.donor
    return Scenario(
        channel="phone",
        requester_type="donor",
        category="delivery_change",
        severity="normal",
        title=f"「{shipment.gift_item.name}」の配達日を変更したい",
        description=(
            f"{donor.name}様。帰省のため年末は不在。配達を1月4日以降の午前中に変更してほしい。"
        ),
        donor=donor,
        donations=[shipment.donation],
        shipments=[shipment],
        provider=shipment.gift_item.provider,
        steps=[
            Step(3, "assign"),
            Step(10, "note", "事業者へ出荷日の変更を依頼。回答待ち。"),
            Step(
                60 * 3,
                "reply",
                "事業者に確認し、1月5日午前中のお届けに変更いたしました。",
            ),
            Step(60 * 4, "resolve"),
        ],
    )


def _shipping_status(r: Records) -> Scenario | None:
    shipment = r.take(r.pending)
    if shipment is None:
        return None
    donor = shipment.donation.donor
    return Scenario(
        channel=r.rng.choice(["phone", "web_form"]),
        requester_type="donor",
        category="shipping_status",
        severity="normal",
        title="返礼品がまだ届かない",
        description=(
            f"{donor.name}様。{shipment.donation.donated_at:%m月%d日}に申し込んだ"
            f"「{shipment.gift_item.name}」がまだ届かない。いつ頃発送されるか知りたい。"
        ),
        donor=donor,
        donations=[shipment.donation],
        shipments=[shipment],
        submitter_email=_email_of(donor),
        steps=[Step(9, "assign"), Step(25, "note", "事業者に出荷予定を確認中。")],
    )


def _returned(r: Records) -> Scenario | None:
    shipment = r.take(r.returned)
    if shipment is None:
        # Few donors, nothing returned yet: a delivered parcel that was first carried back.
        shipment = next((s for s in r.delivered if s.carrier is not None), None)
        if shipment is not None:
            r.delivered.remove(shipment)
    if shipment is None or shipment.carrier is None:
        return None
    return Scenario(
        channel="phone",
        requester_type="carrier",
        category="shipping_status",
        severity="high",
        title="宛先不明で返送された荷物の扱い",
        description=(
            f"{shipment.carrier.name}より。伝票番号 {shipment.tracking_number} の荷物が"
            "宛先不明で持ち戻り。保管期限は1週間。再配達先の確認をお願いしたい。"
        ),
        donor=shipment.donation.donor,
        donations=[shipment.donation],
        shipments=[shipment],
        steps=[
            Step(5, "assign"),
            Step(
                20,
                "note",
                "寄附者の登録電話に2回架電したが不在。留守電にメッセージを残した。",
            ),
            Step(60 * 24, "severity"),
        ],
    )


def _provider_settlement(r: Records) -> Scenario | None:
    if not r.providers:
        return None
    provider = r.rng.choice(r.providers)
    return Scenario(
        channel=r.rng.choice(["phone", "fax"]),
        requester_type="provider",
        category="provider_settlement",
        severity="normal",
        title="今月分の返礼品代金の精算について",
        description=(
            f"{provider.name}（{provider.contact_person}様）より。"
            "先月出荷分の請求書を送ったが、支払予定日を教えてほしい。件数に差異があるかも確認したい。"
        ),
        provider=provider,
        submitter_email=provider.email,
        steps=[
            Step(10, "assign"),
            Step(
                40,
                "note",
                "出荷実績と請求件数を突き合わせ。2件の差異は取消分。市の会計担当へ確認依頼。",
            ),
            Step(
                60 * 24 * 2,
                "reply",
                "支払予定日は月末です。差異の2件は寄附者都合の取消分のため請求対象外となります。",
            ),
            Step(60 * 3, "close"),
        ],
    )


def _portal_review(r: Records) -> Scenario | None:
    shipment = r.take(r.delivered)
    if shipment is None:
        return None
    donation = shipment.donation
    return Scenario(
        channel="portal_review",
        requester_type="donor",
        category="portal_review",
        severity=r.rng.choice(["normal", "high"]),
        title=f"{donation.get_portal_display()}の口コミ: 「{shipment.gift_item.name}」",
        description=(
            "★2「届いたのは良いが、説明より量が少なく感じた。問い合わせ先が分かりにくい。」"
        ),
        donor=donation.donor,
        donations=[donation],
        shipments=[shipment],
        provider=shipment.gift_item.provider,
        steps=[
            Step(60, "assign"),
            Step(
                30,
                "note",
                "内容量は規格どおり（事業者確認済み）。ポータルへの返信文案を市に確認中。",
            ),
            Step(60 * 24, "note_shared", "市の了承を得て、ポータル上で返信を掲載。"),
            Step(10, "resolve"),
        ],
    )


def _how_to_donate(r: Records) -> Scenario | None:
    return Scenario(
        channel="phone",
        requester_type="prospective_donor",
        category="how_to_donate",
        severity="low",
        title="寄附の申込方法と控除上限額について",
        description=(
            "初めての寄附を検討中。電話で申し込めるか、控除の上限額はどう計算するかを知りたい。"
        ),
        steps=[
            Step(2, "assign"),
            Step(
                8,
                "reply",
                "ポータルサイトのほか、郵送・FAXの申込書でもお申込みいただけます。"
                "控除上限額はポータルのシミュレーションをご案内しました。",
            ),
            Step(1, "close"),
        ],
    )


def _wrong_missing(r: Records) -> Scenario | None:
    shipment = r.take(r.delivered)
    if shipment is None:
        return None
    donor = shipment.donation.donor
    return Scenario(
        channel="phone",
        requester_type="donor",
        category="wrong_missing",
        severity="urgent",
        title="申し込んだものと違う返礼品が届いた（生もの）",
        description=(
            f"{donor.name}様。「{shipment.gift_item.name}」を申し込んだが別の品が届いた。"
            "生ものなので早く対応してほしい。"
        ),
        donor=donor,
        donations=[shipment.donation],
        shipments=[shipment],
        provider=shipment.gift_item.provider,
        steps=[
            Step(2, "assign"),
            Step(5, "note", "事業者へ至急確認。出荷時の取り違えの可能性。SVへ報告。"),
            Step(
                40,
                "note_shared",
                "事業者より取り違えを確認。正しい品を本日発送、誤配分は回収不要。",
            ),
            Step(
                5,
                "reply",
                "大変申し訳ございません。正しい返礼品を本日発送いたしました。"
                "お手元の品はそのままお納めください。",
            ),
        ],
    )


SCENARIOS: list[tuple[Callable[[Records], Scenario | None], int]] = [
    (_damaged, 3),
    (_receipt, 4),
    (_one_stop, 4),
    (_address_change, 2),
    (_delivery_change, 3),
    (_shipping_status, 4),
    (_returned, 1),
    (_provider_settlement, 2),
    (_portal_review, 2),
    (_how_to_donate, 2),
    (_wrong_missing, 1),
]


# Each city gets one of these (with this channel, if given) before the random rest, so that
# every kind of inquiry is on show even with few donors.
COVERED: list[tuple[Callable[[Records], Scenario | None], str | None]] = [
    (_damaged, "phone"),
    (_receipt, "letter"),
    (_address_change, "fax"),
    (_one_stop, "phone"),
    (_delivery_change, "phone"),
    (_returned, None),
    (_provider_settlement, "fax"),
    (_portal_review, None),
    (_how_to_donate, None),
    (_wrong_missing, None),
]


# --- Writing them ---------------------------------------------------------------------------


def _write(
    scenario: Scenario,
    *,
    municipality: Municipality,
    opened: datetime.datetime,
    end: datetime.datetime,
    clock: DemoClock,
    agent: User,
    supervisor: User | None,
) -> Inquiry:
    clock.set(opened)
    inquiry = services.inquiry_open(
        actor=agent,
        municipality=municipality,
        channel=scenario.channel,
        title=scenario.title,
        description=scenario.description,
        requester_type=scenario.requester_type,
        category=scenario.category,
        severity=scenario.severity,
        donor=scenario.donor,
        donations=scenario.donations,
        shipments=scenario.shipments,
        provider=scenario.provider,
        submitter_email=scenario.submitter_email,
    )
    for step in scenario.steps:
        at = clock.at + datetime.timedelta(minutes=step.minutes)
        if at > end:
            break  # still in progress today: later steps have not happened yet
        clock.set(at)
        if step.kind == "assign":
            services.inquiry_assign(actor=supervisor or agent, inquiry=inquiry, assignee=agent)
        elif step.kind == "note":
            services.inquiry_add_note(actor=agent, inquiry=inquiry, body=step.text)
        elif step.kind == "note_shared":
            # Shared with the city: officials read these on the city view.
            services.inquiry_add_note(
                actor=agent, inquiry=inquiry, body=step.text, operator_only=False
            )
        elif step.kind == "reply":
            services.inquiry_reply(actor=agent, inquiry=inquiry, body=step.text)
        elif step.kind == "resolve":
            services.inquiry_change_status(actor=agent, inquiry=inquiry, status=Status.RESOLVED)
        elif step.kind == "close":
            services.inquiry_change_status(actor=agent, inquiry=inquiry, status=Status.CLOSED)
        elif step.kind == "severity":
            services.inquiry_change_severity(
                actor=supervisor or agent, inquiry=inquiry, severity="urgent"
            )
    return inquiry


def seed_demo(*, rng: random.Random, today: datetime.date, stdout: Any) -> dict[str, int]:
    """Inquiries of the last weeks for every demo municipality; returns counts."""
    end = demo_now(today)
    clock = DemoClock(end)
    created = 0
    makers = [m for m, _ in SCENARIOS]
    weights = [w for _, w in SCENARIOS]
    with clock.running():
        for municipality in Municipality.objects.order_by("code"):
            agents, supervisors = staff_for(municipality)
            if not agents:
                continue  # --no-users: nobody to have answered them
            records = Records.load(rng, municipality, end.date())
            wanted = rng.randint(15, 30)
            # Older tickets first, so that ids grow with time as they would have.
            days_ago = sorted((rng.randrange(HISTORY_DAYS) for _ in range(wanted)), reverse=True)
            plan: list[Scenario] = []
            for maker, channel in COVERED:
                scenario = maker(records)
                if scenario is not None:
                    scenario.channel = channel or scenario.channel
                    plan.append(scenario)
            while len(plan) < wanted:
                scenario = rng.choices(makers, weights)[0](records)
                if scenario is not None:
                    plan.append(scenario)
            rng.shuffle(plan)
            for ago, scenario in zip(days_ago, plan, strict=False):
                day = end.astimezone(TOKYO).date() - datetime.timedelta(days=ago)
                opened = office_moment(rng, day)
                if opened >= end:
                    opened = end - datetime.timedelta(minutes=rng.randint(20, 240))
                _write(
                    scenario,
                    municipality=municipality,
                    opened=opened,
                    end=end,
                    clock=clock,
                    agent=rng.choice(agents),
                    supervisor=supervisors[0] if supervisors else None,
                )
                created += 1
    return {"inquiries": created}
