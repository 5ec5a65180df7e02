from django.urls import path

from telephony import consumers

websocket_urlpatterns = [
    path("ws/telephony/agent/", consumers.AgentConsumer.as_asgi()),
    path("ws/telephony/wallboard/", consumers.WallboardConsumer.as_asgi()),
]
