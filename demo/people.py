"""Synthetic donors: a kanji name with its reading, an address, phones and an e-mail address."""

from __future__ import annotations

import random
from bisect import bisect_right
from dataclasses import dataclass, field
from itertools import accumulate

import jaconv

from demo import data
from demo.numbers import Phones, e164

_BUILDINGS = data.BUILDINGS


@dataclass(slots=True)
class Person:
    name: str  # "山田 太郎"
    kana_source: str  # the reading as the source system wrote it (katakana, hiragana, ﾊﾝｶｸ)
    kana: str  # normalized: full-width katakana without spaces (what Donor.save stores)
    postal_code: str
    prefecture: str
    address: str  # city, town and 丁目-番-号, without the prefecture
    building: str
    phones: list[tuple[str, str]] = field(default_factory=list)  # (e164, raw)
    email: str = ""

    @property
    def full_address(self) -> str:
        return f"{self.prefecture}{self.address}{(' ' + self.building) if self.building else ''}"

    @property
    def main_phone(self) -> str:
        return self.phones[0][0] if self.phones else ""


class _Names:
    """A name table with precomputed cumulative weights, normalized readings and romaji."""

    def __init__(self, rows: list[tuple[str, str, int]]) -> None:
        self.kanji = [r[0] for r in rows]
        self.kana = [r[1] for r in rows]
        self.hira = [jaconv.kata2hira(r[1]) for r in rows]
        self.half = [jaconv.z2h(r[1], kana=True) for r in rows]
        self.romaji = [jaconv.kata2alphabet(r[1]).replace("ー", "") for r in rows]
        self.cum = list(accumulate(r[2] for r in rows))
        self.total = self.cum[-1]


class PersonMaker:
    """Makes people deterministically from a seeded Random."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.phones = Phones(rng)
        self.surnames = _Names(data.SURNAMES)
        self.male = _Names(data.GIVEN_NAMES_MALE)
        self.female = _Names(data.GIVEN_NAMES_FEMALE)
        self.places = data.DONOR_PLACES
        self.place_cum = list(accumulate(p.weight for p in self.places))
        self.domains = [d for d, _ in data.EMAIL_DOMAINS]
        self.domain_cum = list(accumulate(w for _, w in data.EMAIL_DOMAINS))

    def _pick(self, names: _Names) -> int:
        return bisect_right(names.cum, self.rng.random() * names.total)

    def person(self, home: data.Place | None = None) -> Person:
        """A donor; ``home`` places them in a given city (residents of the municipality)."""
        # random() with arithmetic instead of randrange/choice: this runs millions of times.
        rand = self.rng.random
        s = self._pick(self.surnames)
        given = self.male if rand() < 0.55 else self.female
        g = self._pick(given)
        surnames = self.surnames
        name = f"{surnames.kanji[s]} {given.kanji[g]}"
        # Sources differ: 楽天 and チョイス export katakana, Furusato360 hiragana, some old
        # systems half-width kana; separators vary too.
        form = rand()
        if form < 0.55:
            kana_source = f"{surnames.kana[s]}　{given.kana[g]}"
        elif form < 0.80:
            kana_source = f"{surnames.hira[s]} {given.hira[g]}"
        elif form < 0.92:
            kana_source = f"{surnames.half[s]} {given.half[g]}"
        else:
            kana_source = f"{surnames.kana[s]}{given.kana[g]}"
        kana = surnames.kana[s] + given.kana[g]

        if home is None:
            place = self.places[bisect_right(self.place_cum, rand() * self.place_cum[-1])]
        else:
            place = home
        prefixes = place.postal_prefixes
        postal_code = f"{prefixes[int(rand() * len(prefixes))]}{int(rand() * 10000):04d}"
        town = place.towns[int(rand() * len(place.towns))]
        address = (
            f"{place.city}{town}{int(rand() * 5) + 1}-{int(rand() * 29) + 1}-{int(rand() * 24) + 1}"
        )
        building = ""
        if rand() < 0.35:
            building = (
                f"{_BUILDINGS[int(rand() * len(_BUILDINGS))]} "
                f"{int(rand() * 14) + 1}{int(rand() * 11) + 1:02d}号室"
            )

        person = Person(name, kana_source, kana, postal_code, place.prefecture, address, building)
        phones = self.phones
        if rand() < 0.75:
            national, area = phones.mobile(), None
        else:
            national, area = phones.landline(place.area_code), place.area_code
        person.phones.append((e164(national), phones.raw_form(national, area)))
        if rand() < 0.2:  # a second number: the landline at home or a mobile
            if area is None:
                second, second_area = phones.landline(place.area_code), place.area_code
            else:
                second, second_area = phones.mobile(), None
            person.phones.append((e164(second), phones.raw_form(second, second_area)))
        if rand() < 0.7:
            domain = self.domains[bisect_right(self.domain_cum, rand() * self.domain_cum[-1])]
            local = f"{given.romaji[g]}.{surnames.romaji[s]}"
            if rand() < 0.6:
                local += str(int(rand() * 999) + 1)
            # Some people type their address with capitals; DonorEmail.save lower-cases it.
            person.email = f"{local}@{domain}"
            if rand() < 0.05:
                person.email = person.email.capitalize()
        return person
