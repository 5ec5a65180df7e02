"""Websocket routes of every app, gathered in one place for the ASGI router."""

from telephony.routing import websocket_urlpatterns as telephony_websockets

websocket_urlpatterns: list = [
    *telephony_websockets,
]
