"""Synthetic demo and operator-scale data (no real personal data, per the municipal specs).

Sits above every production app and is imported by none of them (the layers contract in
pyproject.toml checks it): the product runs without it, the demo and the benchmarks load with it.

- ``data``: tables of names with readings, places, municipalities, carriers and gift catalogues.
- ``numbers``: portal order numbers, management numbers, tracking numbers, phone numbers.
- ``people``: one synthetic donor (name, reading, address, phones, e-mail) at a time.
- ``plan``: donations and shipments of a donor, shared by the demo and the scale loader.
- ``seed``: the demo dataset through the ORM (SQLite or PostgreSQL), then each app's content:
- ``tickets``, ``mail``, ``telephony``: a few weeks of inquiries, inbound mail and calls per city.
- ``scale``: the operator-scale dataset through PostgreSQL COPY.
- ``users``: demo log-ins and their TOTP devices.
- ``management/commands``: ``seed_demo``, ``demo_logins``, ``totp_code``.
"""
