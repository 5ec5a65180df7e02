"""Synthetic demo and operator-scale data (no real personal data, per the municipal specs).

- ``data``: tables of names with readings, places, municipalities, carriers and gift catalogues.
- ``numbers``: portal order numbers, management numbers, tracking numbers, phone numbers.
- ``people``: one synthetic donor (name, reading, address, phones, e-mail) at a time.
- ``plan``: donations and shipments of a donor, shared by the demo and the scale loader.
- ``seed``: the demo dataset through the ORM (SQLite or PostgreSQL).
- ``scale``: the operator-scale dataset through PostgreSQL COPY.
- ``users``: demo log-ins and their TOTP devices.
"""
