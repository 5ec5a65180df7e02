from django.urls import path

from telephony import views

app_name = "telephony"

urlpatterns = [
    # Twilio webhooks (signed; see telephony.twilio_api.twilio_webhook)
    path("webhooks/voice/inbound/", views.voice_inbound, name="voice_inbound"),
    path("webhooks/voice/menu/", views.voice_menu, name="voice_menu"),
    path("webhooks/voice/wait/", views.voice_wait, name="voice_wait"),
    path("webhooks/voice/queue-exit/", views.voice_queue_exit, name="voice_queue_exit"),
    path("webhooks/voice/agent/", views.voice_agent, name="voice_agent"),
    path("webhooks/voice/dial-done/", views.voice_dial_done, name="voice_dial_done"),
    path("webhooks/voice/voicemail/", views.voice_voicemail, name="voice_voicemail"),
    path("webhooks/voice/outbound/", views.voice_outbound, name="voice_outbound"),
    path("webhooks/status/call/", views.status_call, name="status_call"),
    path("webhooks/status/agent-leg/", views.status_agent_leg, name="status_agent_leg"),
    path("webhooks/status/recording/", views.status_recording, name="status_recording"),
    # Agents and supervisors
    path("", views.agent_page, name="agent"),
    path("presence/", views.presence_update, name="presence_update"),
    path("token/", views.voice_token, name="voice_token"),
    path("calls/<int:call_id>/pop/", views.call_pop, name="call_pop"),
    path("calls/<int:call_id>/wrap-up/", views.call_wrap_up, name="call_wrap_up"),
    path("calls/<int:call_id>/ticket/", views.call_ticket_start, name="call_ticket_start"),
    path("calls/<int:call_id>/recording/", views.call_recording, name="call_recording"),
    path("inquiries/<int:inquiry_id>/call-back/", views.call_back, name="call_back"),
    path("wallboard/", views.wallboard, name="wallboard"),
    path(
        "wallboard/agents/<int:user_id>/reset/",
        views.agent_presence_reset,
        name="agent_presence_reset",
    ),
]
