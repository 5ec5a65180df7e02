"""Websocket routes of every app, gathered in one place for the ASGI router."""

from django.urls import path

from donations_sync.consumers import ImportRunConsumer
from telephony.routing import websocket_urlpatterns as telephony_websockets
from tickets.consumers import ConsoleConsumer, TicketPresenceConsumer

websocket_urlpatterns: list = [
    path("ws/tickets/<int:ticket_id>/presence/", TicketPresenceConsumer.as_asgi()),
    path("ws/console/", ConsoleConsumer.as_asgi()),
    path("ws/imports/<int:run_id>/", ImportRunConsumer.as_asgi()),
    *telephony_websockets,
]
