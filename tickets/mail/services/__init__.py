"""Every write of the mail app, one module per concern (callers import the module they use):

- ``inbound``: routing, storing and processing received mail, one message or a fetched batch;
- ``sending``: the outbound queue, sending at most once, retries and their sweep;
- ``configuration``: what supervisors set up (triage rules, acknowledgement, inbox settings).
"""
