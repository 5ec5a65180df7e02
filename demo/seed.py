"""The demo dataset through the ORM: three municipalities, a few hundred donors each.

Runs on SQLite (the embedded demo) and PostgreSQL. Donors go through Donor.save and
DonorEmail.save so that readings and addresses are normalized exactly as in production; phones go
through crm.normalize with the raw form kept.
"""

from __future__ import annotations

import datetime
import random
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from crm import normalize
from crm.models import (
    Carrier,
    CityContact,
    Donor,
    DonorEmail,
    DonorPhone,
    Municipality,
    MunicipalityEmailAddress,
    MunicipalityPhoneNumber,
    Provider,
)
from demo import data
from demo import escalation as demo_escalation
from demo import mail as demo_mail
from demo import telephony as demo_telephony
from demo import tickets as demo_tickets
from demo.people import Person, PersonMaker
from demo.plan import RESIDENT_SHARE, Catalogue, DonationPlan, Planner
from demo.users import create_demo_users
from donations_sync.models import Donation, GiftItem, Shipment

DEFAULT_SEED = 20241216
DEMO_DONORS_PER_CITY = 300
SAME_PERSON_ELSEWHERE_SHARE = 0.04  # one person donating to several municipalities


@dataclass
class SeededMunicipality:
    spec: data.MunicipalitySpec
    municipality: Municipality
    gifts: list[GiftItem]
    catalogue: Catalogue


def create_carriers() -> dict[str, Carrier]:
    carriers = {}
    for spec in data.CARRIERS:
        carrier, _ = Carrier.objects.update_or_create(
            code=spec.code,
            defaults={
                "name": spec.name,
                "short_name": spec.short_name,
                "tracking_url_template": spec.tracking_url_template,
                "tracking_rule": spec.tracking_rule,
            },
        )
        carriers[spec.code] = carrier
    return carriers


def _normalized(raw: str) -> str:
    e164 = normalize.normalize_phone(raw)
    if e164 is None:  # the tables above are wrong, not the caller
        raise ValueError(f"invalid generated phone number: {raw}")
    return e164


def create_municipality(
    spec: data.MunicipalitySpec, index: int, people: PersonMaker, today: datetime.date
) -> SeededMunicipality:
    """A municipality with its inbound numbers and addresses, contacts, providers and gifts."""
    municipality = Municipality.objects.create(
        code=spec.code,
        name=spec.name,
        name_kana=spec.name_kana,
        prefecture=spec.prefecture,
        answer_name=spec.answer_name,
        contract_start=datetime.date(today.year - 1, 4, 1),
        contract_end=datetime.date(today.year + 1, 3, 31),
    )
    # Each municipality has its own free-dial number and a 050 number for overflow; the
    # number dialled tells the agent which municipality the caller means.
    MunicipalityPhoneNumber.objects.create(
        municipality=municipality,
        e164=_normalized(f"0120-{200 + index:03d}-{(index * 379 + 117) % 1000:03d}"),
        label="フリーダイヤル",
    )
    MunicipalityPhoneNumber.objects.create(
        municipality=municipality,
        e164=_normalized(f"050-{5510 + index:04d}-{(index * 7919 + 1234) % 10000:04d}"),
        label="050番号（IP電話）",
    )
    MunicipalityEmailAddress.objects.create(
        municipality=municipality, address=f"{spec.slug}@furusato-callcenter.example.jp"
    )
    MunicipalityEmailAddress.objects.create(
        municipality=municipality, address=f"{spec.slug}-onestop@furusato-callcenter.example.jp"
    )
    for order, (department, name) in enumerate(
        [("企画政策課 ふるさと納税係", "中島 由美"), ("企画政策課", "石田 正雄")], start=1
    ):
        CityContact.objects.create(
            municipality=municipality,
            name=name,
            department=department,
            phone=_normalized(people.phones.landline(spec.area_code)),
            email=f"furusato{order}@city-{spec.slug}.example.jp",
            escalation_order=order,
        )
    providers = []
    for n, p in enumerate(spec.providers, start=1):
        providers.append(
            Provider.objects.create(
                municipality=municipality,
                code=f"P{n:03d}",
                name=p.name,
                name_kana=p.name_kana,
                phone=_normalized(people.phones.landline(spec.area_code)),
                email=f"provider{n}.{spec.slug}@example.co.jp",
                contact_person=p.contact_person,
            )
        )
    gifts = [
        GiftItem.objects.create(
            municipality=municipality,
            provider=providers[g.provider],
            code=g.code,
            name=g.name,
            season_start_month=g.season[0] if g.season else None,
            season_end_month=g.season[1] if g.season else None,
            deliveries=g.deliveries,
            perishable=g.perishable,
        )
        for g in spec.gifts
    ]
    return SeededMunicipality(spec, municipality, gifts, Catalogue(spec))


def _create_donor(city: SeededMunicipality, person: Person, number: int, resident: bool) -> Donor:
    donor = Donor(
        municipality=city.municipality,
        donor_number=f"{number:07d}",
        name=person.name,
        name_kana=person.kana_source,  # Donor.save normalizes the reading
        postal_code=person.postal_code,
        prefecture=person.prefecture,
        address=person.address,
        building=person.building,
        is_resident=resident,
    )
    donor.save()
    for _, raw in person.phones:
        DonorPhone.objects.create(
            donor=donor, municipality=city.municipality, e164=_normalized(raw), raw=raw
        )
    if person.email:
        DonorEmail(donor=donor, municipality=city.municipality, address=person.email).save()
    return donor


def _create_donations(
    city: SeededMunicipality, carriers: dict[str, Carrier], pairs: list[tuple[Donor, DonationPlan]]
) -> tuple[int, int]:
    municipality = city.municipality
    donations = Donation.objects.bulk_create(
        [
            Donation(
                municipality=municipality,
                donor=donor,
                portal=plan.portal,
                portal_order_number=plan.portal_order_number,
                external_id=plan.external_id,
                donated_at=plan.donated_at,
                paid_on=plan.paid_on,
                amount=plan.amount,
                payment_method=plan.payment_method,
                one_stop_requested=plan.one_stop_requested,
                one_stop_received_on=plan.one_stop_received_on,
                receipt_issued_on=plan.receipt_issued_on,
                gift_declined=plan.gift_declined,
                status=plan.status,
            )
            for donor, plan in pairs
        ]
    )

    def shipment(donation: Donation, s, replaces: Shipment | None) -> Shipment:
        return Shipment(
            municipality=municipality,
            donation=donation,
            gift_item=city.gifts[s.gift],
            delivery_number=s.delivery_number,
            ship_to_name=s.ship_to.name,
            ship_to_kana=s.ship_to.kana,
            ship_to_postal_code=s.ship_to.postal_code,
            ship_to_address=s.ship_to.full_address,
            ship_to_phone=s.ship_to.main_phone,
            desired_date=s.desired_date,
            desired_time_slot=s.time_slot,
            carrier=carriers[s.carrier] if s.carrier else None,
            tracking_number=s.tracking_number,
            shipped_on=s.shipped_on,
            delivered_on=s.delivered_on,
            status=s.status,
            replaces=replaces,
        )

    # Originals first so that re-shipments can point at them.
    originals = []
    for donation, (_, plan) in zip(donations, pairs, strict=True):
        for s in plan.shipments:
            if s.replaces is None:
                originals.append(((donation, plan, s), shipment(donation, s, None)))
    Shipment.objects.bulk_create([obj for _, obj in originals])
    by_plan = {id(s): obj for (_, _, s), obj in originals}
    replacements = [
        shipment(donation, s, by_plan[id(plan.shipments[s.replaces])])
        for donation, (_, plan) in zip(donations, pairs, strict=True)
        for s in plan.shipments
        if s.replaces is not None
    ]
    Shipment.objects.bulk_create(replacements)
    returned_donor_ids = {
        pair[0].id
        for donation, pair in zip(donations, pairs, strict=True)
        for s in pair[1].shipments
        if s.status == "returned"
    }
    Donor.objects.filter(id__in=returned_donor_ids).update(returned_mail=True)
    return len(donations), len(originals) + len(replacements)


@transaction.atomic
def seed_demo(
    *,
    seed: int = DEFAULT_SEED,
    today: datetime.date | None = None,
    donors_per_city: int = DEMO_DONORS_PER_CITY,
    with_users: bool = True,
    stdout: Any = None,
) -> dict[str, int]:
    """Create the demo dataset; returns counts of what was created."""
    today = today or datetime.date.today()  # noqa: DTZ011 - the demo's calendar day
    rng = random.Random(seed)
    people = PersonMaker(rng)
    planner = Planner(rng, people, today)
    carriers = create_carriers()
    counts = {"municipalities": 0, "donors": 0, "donations": 0, "shipments": 0}
    seeded: dict[str, SeededMunicipality] = {}
    earlier_people: list[Person] = []
    for index, spec in enumerate(data.DEMO_MUNICIPALITIES):
        city = create_municipality(spec, index, people, today)
        seeded[spec.slug] = city
        counts["municipalities"] += 1
        pairs: list[tuple[Donor, DonationPlan]] = []
        city_people: list[Person] = []
        for number in range(1, donors_per_city + 1):
            resident = rng.random() < RESIDENT_SHARE * 2  # a few more than usual, to be seen
            if earlier_people and not resident and rng.random() < SAME_PERSON_ELSEWHERE_SHARE:
                # The same person, known separately to this municipality.
                person = rng.choice(earlier_people)
            else:
                person = people.person(spec.place if resident else None)
            if not resident:
                city_people.append(person)
            donor = _create_donor(city, person, number, resident)
            counts["donors"] += 1
            for _ in range(1 + (rng.random() < 0.35) + (rng.random() < 0.08)):
                pairs.append(
                    (
                        donor,
                        planner.donation(
                            city.catalogue, person, is_resident=resident, shipments_wanted=1.4
                        ),
                    )
                )
        earlier_people.extend(city_people)
        donations, shipments = _create_donations(city, carriers, pairs)
        counts["donations"] += donations
        counts["shipments"] += shipments
    if with_users:
        counts["users"] = len(
            create_demo_users({slug: c.municipality for slug, c in seeded.items()})
        )
    counts.update(seed_installed_apps(seed=seed, today=today, stdout=stdout))
    return counts


# Each app's content, in layer order so that later ones build on earlier ones (mail threads onto
# tickets, calls open and link tickets). The label keeps one generator per app, so that one app's
# content does not shift another's.
APP_CONTENT = (
    ("tickets", demo_tickets),
    ("ticketmail", demo_mail),
    ("telephony", demo_telephony),
    ("escalation", demo_escalation),
)


def seed_installed_apps(*, seed: int, today: datetime.date, stdout: Any) -> dict[str, int]:
    """Add each app's demo content (tickets, mail, calls) over the municipalities and donors."""
    counts: dict[str, int] = {}
    for label, module in APP_CONTENT:
        rng = random.Random(f"{seed}:{label}")
        for key, value in module.seed_demo(rng=rng, today=today, stdout=stdout).items():
            counts[key] = counts.get(key, 0) + value
    return counts
