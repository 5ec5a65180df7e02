"""Playing a call's recording: streamed from (a stand-in for) Twilio's REST API through us."""

from __future__ import annotations

import base64
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import time_machine
from django.urls import reverse

from crm.models import PersonalDataAccess
from telephony.models import Call
from tests.telephony.conftest import ACCOUNT_SID, AUTH_TOKEN, PhoneCall, tokyo

CALLER = "+819012345678"
RECORDING_SID = "RE" + "ab" * 16
AUDIO = b"ID3\x04\x00" + bytes(range(256)) * 40  # binary, as an MP3 is


class FakeTwilioMedia(BaseHTTPRequestHandler):
    """Twilio's recording media endpoint: basic auth with the account, Range supported."""

    requests: list[dict] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        FakeTwilioMedia.requests.append({"path": self.path, "headers": dict(self.headers)})
        expected = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
        if self.headers.get("Authorization") != expected:
            self.send_response(401)
            self.end_headers()
            return
        if self.path != f"/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{RECORDING_SID}.mp3":
            self.send_response(404)
            self.end_headers()
            return
        body, status = AUDIO, 200
        byte_range = self.headers.get("Range", "")
        if byte_range.startswith("bytes="):
            start, _, end = byte_range[6:].partition("-")
            end_i = int(end) if end else len(AUDIO) - 1
            body, status = AUDIO[int(start) : end_i + 1], 206
        self.send_response(status)
        self.send_header("Content-Type", "audio/mpeg")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end_i}/{len(AUDIO)}")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def twilio_media(settings):
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeTwilioMedia)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.TWILIO_API_BASE_URL = f"http://127.0.0.1:{server.server_address[1]}"
    FakeTwilioMedia.requests = []
    yield FakeTwilioMedia
    server.shutdown()
    server.server_close()


@pytest.fixture
def voicemail(twilio, line_a, django_capture_on_commit_callbacks) -> Call:
    """An after-hours voicemail, recorded and turned into a ticket."""
    with time_machine.travel(tokyo(2025, 6, 10, 19, 30), tick=False):
        call = PhoneCall(twilio, from_=CALLER, to=line_a.e164)
        call.dial_in()
    with django_capture_on_commit_callbacks(execute=True):
        call.record_voicemail(recording_sid=RECORDING_SID)
    call.hang_up()
    return Call.objects.get(call_sid=call.sid)


def play(client, call: Call, **headers):
    response = client.get(reverse("telephony:call_recording", args=[call.pk]), **headers)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return response, body


def test_agent_plays_the_recording_through_our_server(login, agent_a, voicemail, twilio_media):
    response, body = play(login(agent_a), voicemail)
    assert response.status_code == 200
    assert response["Content-Type"] == "audio/mpeg"
    assert body == AUDIO
    assert response["Cache-Control"] == "private, no-store"
    [request] = twilio_media.requests  # with our account's credentials (checked by the fake)
    assert request["path"].endswith(f"/Recordings/{RECORDING_SID}.mp3")
    access = PersonalDataAccess.objects.get(record_type="call_recording")
    assert access.user == agent_a and access.record_id == str(voicemail.pk)


def test_player_can_seek_with_a_range(login, agent_a, voicemail, twilio_media):
    response, body = play(login(agent_a), voicemail, HTTP_RANGE="bytes=100-199")
    assert response.status_code == 206
    assert body == AUDIO[100:200]
    assert response["Content-Range"] == f"bytes 100-199/{len(AUDIO)}"
    # A seek is part of the same listening: not logged again.
    assert not PersonalDataAccess.objects.filter(record_type="call_recording").exists()


def test_agent_of_another_city_cannot_play_it(login, agent_b, voicemail, twilio_media):
    response, _ = play(login(agent_b), voicemail)
    assert response.status_code == 404
    assert twilio_media.requests == []


def test_twilio_refusing_is_a_bad_gateway_not_a_broken_file(
    login, agent_a, voicemail, twilio_media, settings
):
    settings.TWILIO_AUTH_TOKEN = "a-rotated-token"
    response, _ = play(login(agent_a), voicemail)
    assert response.status_code == 502


def test_call_without_recording_has_nothing_to_play(login, agent_a, twilio, line_a, open_hours):
    call = PhoneCall(twilio, from_=CALLER, to=line_a.e164)
    call.dial_in()
    response, _ = play(login(agent_a), Call.objects.get(call_sid=call.sid))
    assert response.status_code == 404


def test_ticket_page_links_the_calls_recording(login, agent_a, voicemail, twilio_media):
    page = login(agent_a).get(reverse("ticket_detail", args=[voicemail.inquiry_id]))
    url = reverse("telephony:call_recording", args=[voicemail.pk])
    html = page.content.decode()
    assert f'href="{url}"' in html
    assert "録音を再生" in html
