"""Donations and shipments of one donor, as plain records shared by the ORM and COPY loaders.

Dates are relative to a reference day (today unless given), so the demo always shows recent
donations, shipments under way and 定期便 deliveries still to come. December carries about a
third of the year's donations, as in real life.
"""

from __future__ import annotations

import datetime
import random
from bisect import bisect_right
from dataclasses import dataclass, field
from itertools import accumulate

from demo import data
from demo.numbers import TrackingNumbers, external_id, portal_order_number
from demo.people import Person, PersonMaker

PORTALS = [
    ("rakuten", 35),
    ("choice", 25),
    ("satofull", 15),
    ("furunavi", 10),
    ("ana", 4),
    ("jre", 3),
    ("aupay", 4),
    ("direct", 4),
]
ONLINE_PAYMENTS = [
    ("credit_card", 78),
    ("paypay", 9),
    ("convenience_store", 7),
    ("bank_transfer", 6),
]
DIRECT_PAYMENTS = [("postal_transfer", 60), ("bank_transfer", 30), ("cash", 10)]
NO_GIFT_AMOUNTS = [5000, 10000, 20000, 30000, 50000, 100000]
TIME_SLOTS = ["am", "14-16", "16-18", "18-20", "19-21"]

# Shares of the things the call center hears about.
RESIDENT_SHARE = 0.02  # residents may donate but get no gift
GIFT_DECLINED_SHARE = 0.03
CANCELLED_SHARE = 0.012
REFUNDED_SHARE = 0.004
ONE_STOP_SHARE = 0.45
GIFT_TO_OTHER_SHARE = 0.12
RETURNED_SHARE = 0.015
LOST_SHARE = 0.006
DAMAGED_SHARE = 0.008  # delivered but spoiled or broken: a replacement is sent
INTERNATIONAL_SHARE = 0.002


DAYS = [datetime.timedelta(days=n) for n in range(400)]


def _below(r: random.Random, n: int) -> int:
    """r.randrange(n), several times faster; this runs millions of times at operator scale."""
    return int(r.random() * n)


@dataclass(slots=True)
class ShipmentPlan:
    gift: int  # index into the municipality's gift list
    delivery_number: int
    ship_to: Person
    desired_date: datetime.date | None
    time_slot: str
    carrier: str | None  # carrier code
    tracking_number: str
    shipped_on: datetime.date | None
    delivered_on: datetime.date | None
    status: str
    replaces: int | None = None  # index into the donation's shipment list


@dataclass(slots=True)
class DonationPlan:
    portal: str
    portal_order_number: str
    external_id: str
    donated_at: datetime.datetime
    paid_on: datetime.date | None
    amount: int
    payment_method: str
    one_stop_requested: bool
    one_stop_received_on: datetime.date | None
    receipt_issued_on: datetime.date | None
    gift_declined: bool
    status: str
    shipments: list[ShipmentPlan] = field(default_factory=list)


class Catalogue:
    """A municipality's gifts as the planner needs them (index = position in spec.gifts)."""

    def __init__(self, spec: data.MunicipalitySpec) -> None:
        self.spec = spec
        self.single = [i for i, g in enumerate(spec.gifts) if g.deliveries == 1]
        self.subscriptions = [i for i, g in enumerate(spec.gifts) if g.deliveries > 1]
        self.mean_subscription = (
            sum(spec.gifts[i].deliveries for i in self.subscriptions) / len(self.subscriptions)
            if self.subscriptions
            else 1.0
        )

    def carrier_for(self, gift: int) -> str:
        g = self.spec.gifts[gift]
        return "registered" if g.registered_mail else self.spec.providers[g.provider].carrier


class Planner:
    """Plans donations and shipments; keeps the serial counters that make numbers unique."""

    JST = datetime.timezone(datetime.timedelta(hours=9))

    def __init__(self, rng: random.Random, people: PersonMaker, today: datetime.date) -> None:
        self.rng = rng
        self.people = people
        self.today = today
        self.portal_names = [p for p, _ in PORTALS]
        self.portal_cum = list(accumulate(w for _, w in PORTALS))
        self.portal_serial = {p: rng.randrange(10**5) for p in self.portal_names}
        self.external_serial: dict[str, int] = {}
        self.tracking = {
            c.code: TrackingNumbers(c.tracking_rule, c.prefix, rng) for c in data.CARRIERS
        }
        # Donation days over the last ~15 months, December weighted so that it holds a third.
        first = today - datetime.timedelta(days=450)
        self.days = [first + datetime.timedelta(days=n) for n in range(451)]
        weights = [
            5.5 if d.month == 12 and d.day >= 15 else 4.5 if d.month == 12 else 1.0
            for d in self.days
        ]
        self.day_cum = list(accumulate(weights))

    def _weighted(self, pairs: list[tuple[str, int]]) -> str:
        total = sum(w for _, w in pairs)
        pick = self.rng.random() * total
        for value, weight in pairs:
            pick -= weight
            if pick < 0:
                return value
        return pairs[-1][0]

    def _serial(self, key: str) -> int:
        self.external_serial[key] = self.external_serial.get(key, 0) + 1
        return self.external_serial[key]

    def donation(
        self,
        cat: Catalogue,
        donor: Person,
        *,
        is_resident: bool,
        shipments_wanted: float,
    ) -> DonationPlan:
        """One donation; ``shipments_wanted`` steers how many shipments it should have on average."""
        r = self.rng
        code = cat.spec.code
        day_index = bisect_right(self.day_cum, r.random() * self.day_cum[-1])
        day = self.days[min(day_index, len(self.days) - 1)]
        donated_at = datetime.datetime(
            day.year,
            day.month,
            day.day,
            7 + _below(r, 17),
            _below(r, 60),
            _below(r, 60),
            tzinfo=self.JST,
        )
        portal = self.portal_names[bisect_right(self.portal_cum, r.random() * self.portal_cum[-1])]
        self.portal_serial[portal] += 1
        order_number = portal_order_number(portal, self.portal_serial[portal], day, code)
        ext = external_id(code, day.year, self._serial(code))
        payment = self._weighted(DIRECT_PAYMENTS if portal == "direct" else ONLINE_PAYMENTS)

        if payment in ("credit_card", "paypay"):
            paid_on: datetime.date | None = day
        else:
            paid = day + DAYS[1 + _below(r, 11)]
            paid_on = paid if paid <= self.today else None
        status = "paid" if paid_on else "applied"
        roll = r.random()
        if roll < CANCELLED_SHARE:
            status, paid_on = "cancelled", None
        elif roll < CANCELLED_SHARE + REFUNDED_SHARE and paid_on:
            status = "refunded"

        receipt = None
        if paid_on and status == "paid":
            issued = paid_on + DAYS[3 + _below(r, 11)]
            receipt = issued if issued <= self.today else None
        one_stop = r.random() < ONE_STOP_SHARE
        one_stop_received = None
        if one_stop and r.random() < 0.8:
            received = day + DAYS[10 + _below(r, 30)]
            one_stop_received = received if received <= self.today else None

        gift_declined = not is_resident and r.random() < GIFT_DECLINED_SHARE
        plan = DonationPlan(
            portal=portal,
            portal_order_number=order_number,
            external_id=ext,
            donated_at=donated_at,
            paid_on=paid_on,
            amount=NO_GIFT_AMOUNTS[_below(r, len(NO_GIFT_AMOUNTS))],
            payment_method=payment,
            one_stop_requested=one_stop,
            one_stop_received_on=one_stop_received,
            receipt_issued_on=receipt,
            gift_declined=gift_declined,
            status=status,
        )
        if is_resident or gift_declined or shipments_wanted <= 0:
            return plan

        # Choose a 定期便 often enough that the shipments average out at what was asked for.
        p_subscription = 0.0
        if cat.subscriptions and cat.mean_subscription > 1:
            p_subscription = (shipments_wanted - 1.0) / (cat.mean_subscription - 1.0)
        if r.random() < p_subscription:
            gift = cat.subscriptions[_below(r, len(cat.subscriptions))]
        else:
            gift = cat.single[_below(r, len(cat.single))]
        plan.amount = cat.spec.gifts[gift].amount
        self._shipments(cat, plan, donor, gift, day)
        return plan

    def _first_ship_day(self, cat: Catalogue, gift: int, day: datetime.date) -> datetime.date:
        ship = day + DAYS[5 + _below(self.rng, 35)]
        season = cat.spec.gifts[gift].season
        if season:
            start, end = season
            in_season = (
                (start <= ship.month <= end)
                if start <= end
                else (ship.month >= start or ship.month <= end)
            )
            if not in_season:  # waits for the season to open
                year = ship.year + (1 if ship.month > start else 0)
                ship = datetime.date(year, start, 1) + DAYS[_below(self.rng, 20)]
        return ship

    def _shipments(
        self, cat: Catalogue, plan: DonationPlan, donor: Person, gift: int, day: datetime.date
    ) -> None:
        r = self.rng
        spec_gift = cat.spec.gifts[gift]
        ship_to = donor if r.random() >= GIFT_TO_OTHER_SHARE else self.people.person()
        carrier = cat.carrier_for(gift)
        if (
            carrier != "registered"
            and not spec_gift.perishable
            and r.random() < INTERNATIONAL_SHARE
        ):
            carrier = "international"
        first = self._first_ship_day(cat, gift, day)
        for n in range(1, spec_gift.deliveries + 1):
            ship_day = first + DAYS[30 * (n - 1)]
            shipment = self._shipment(gift, n, ship_to, carrier, ship_day, plan.status)
            plan.shipments.append(shipment)
            if shipment.status in ("returned", "lost") or (
                shipment.status == "delivered" and r.random() < DAMAGED_SHARE
            ):
                # 再送・代品: a new shipment after the problem was reported.
                assert shipment.delivered_on or shipment.shipped_on
                base = shipment.delivered_on or shipment.shipped_on
                again = base + DAYS[3 + _below(r, 7)]
                replacement = self._shipment(
                    gift, n, ship_to, carrier, again, plan.status, final=True
                )
                replacement.replaces = len(plan.shipments) - 1
                plan.shipments.append(replacement)

    def _shipment(
        self,
        gift: int,
        delivery_number: int,
        ship_to: Person,
        carrier: str,
        ship_day: datetime.date,
        donation_status: str,
        *,
        final: bool = False,
    ) -> ShipmentPlan:
        r = self.rng
        desired = ship_day + DAYS[2] if r.random() < 0.1 else None
        slot = TIME_SLOTS[_below(r, len(TIME_SLOTS))] if r.random() < 0.35 else ""
        plan = ShipmentPlan(gift, delivery_number, ship_to, desired, slot, None, "", None, None, "")
        if donation_status in ("cancelled", "refunded"):
            plan.status = "cancelled"
            return plan
        if donation_status == "applied" or ship_day > self.today + datetime.timedelta(days=7):
            plan.status = "pending"
            return plan
        if ship_day > self.today:
            plan.status = "requested"
            return plan
        plan.carrier = carrier
        plan.tracking_number = self.tracking[carrier].next()
        plan.shipped_on = ship_day
        delivered = ship_day + DAYS[1 + _below(r, 3)]
        if delivered > self.today:
            plan.status = "shipped"
            return plan
        roll = 1.0 if final else r.random()
        if roll < RETURNED_SHARE:
            plan.status = "returned"
        elif roll < RETURNED_SHARE + LOST_SHARE:
            plan.status = "lost"
        else:
            plan.status, plan.delivered_on = "delivered", delivered
        return plan
