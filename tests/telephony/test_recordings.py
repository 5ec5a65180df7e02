"""Playing a call's recording: streamed from (a stand-in for) Twilio's REST API through us."""

from __future__ import annotations

import base64
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import time_machine
from channels.db import database_sync_to_async
from django.conf import settings
from django.test import Client
from django.urls import reverse

from crm.models import PersonalDataAccess
from telephony.models import Call
from tests.asgi_stream import asgi_get, body_messages
from tests.conftest import login_as, response_bytes
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
    return response, response_bytes(response)


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
    # A seek is part of a listening already logged: not logged again.
    assert not PersonalDataAccess.objects.filter(record_type="call_recording").exists()


def test_every_listening_is_logged(login, agent_a, voicemail, twilio_media):
    client = login(agent_a)
    assert play(client, voicemail)[0].status_code == 200
    assert play(client, voicemail)[0].status_code == 200  # played again: logged again
    # Players start a listening with a range from the first byte (Chrome "bytes=0-", Safari
    # probing "bytes=0-1" first) and seek further on within it.
    assert play(client, voicemail, HTTP_RANGE="bytes=0-1")[0].status_code == 206
    assert play(client, voicemail, HTTP_RANGE="bytes=4000-")[0].status_code == 206
    assert play(client, voicemail, HTTP_RANGE="bytes=0-")[0].status_code == 206
    logged = PersonalDataAccess.objects.filter(record_type="call_recording")
    assert logged.count() == 4
    assert {(a.user_id, a.record_id, a.municipality_id) for a in logged} == {
        (agent_a.pk, str(voicemail.pk), voicemail.municipality_id)
    }


def test_city_official_may_not_play_recordings_by_default(
    login, city_official_a, voicemail, twilio_media
):
    client = login(city_official_a)
    response, _ = play(client, voicemail)
    assert response.status_code == 403
    assert twilio_media.requests == []
    assert not PersonalDataAccess.objects.filter(record_type="call_recording").exists()
    page = client.get(reverse("ticket_detail", args=[voicemail.inquiry_id]))
    assert page.status_code == 200
    url = reverse("telephony:call_recording", args=[voicemail.pk])
    assert f'href="{url}"' not in page.content.decode()  # no player offered


def test_city_official_plays_their_inquiries_calls_where_the_city_allows_it(
    login, city_official_a, voicemail, twilio_media
):
    city = voicemail.municipality
    city.city_may_play_recordings = True
    city.save(update_fields=["city_may_play_recordings"])
    client = login(city_official_a)
    page = client.get(reverse("ticket_detail", args=[voicemail.inquiry_id])).content.decode()
    assert f'href="{reverse("telephony:call_recording", args=[voicemail.pk])}"' in page

    response, body = play(client, voicemail)
    assert response.status_code == 200 and body == AUDIO
    access = PersonalDataAccess.objects.get(record_type="call_recording")
    assert access.user == city_official_a and access.municipality_id == city.pk

    # A call not linked to any inquiry is operator material even so.
    Call.objects.filter(pk=voicemail.pk).update(inquiry=None)
    response, _ = play(client, voicemail)
    assert response.status_code == 403
    assert len(twilio_media.requests) == 1


def test_another_citys_official_never_finds_the_recording(
    login, city_official_b, voicemail, twilio_media, city_b
):
    for municipality in (voicemail.municipality, city_b):
        municipality.city_may_play_recordings = True
        municipality.save(update_fields=["city_may_play_recordings"])
    response, _ = play(login(city_official_b), voicemail)
    assert response.status_code == 404
    assert twilio_media.requests == []


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


# --- Streaming through the ASGI application ----------------------------------------------------

LONG_AUDIO = bytes(range(256)) * 1024 * 3  # 768 KiB: about three minutes of a phone recording
FIRST_PART = 256 * 1024


class SlowTwilioMedia(BaseHTTPRequestHandler):
    """Sends the first part of the recording, then holds the rest back until told to go on."""

    go_on = threading.Event()
    released_by_listener: list[bool] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.send_response(200)
        self.send_header("Content-Type", "audio/mpeg")
        self.send_header("Content-Length", str(len(LONG_AUDIO)))
        self.end_headers()
        self.wfile.write(LONG_AUDIO[:FIRST_PART])
        self.wfile.flush()
        # Twilio is still sending: the listener must already hear the first part.
        SlowTwilioMedia.released_by_listener.append(SlowTwilioMedia.go_on.wait(timeout=5))
        self.wfile.write(LONG_AUDIO[FIRST_PART:])

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def slow_twilio_media(settings):
    server = ThreadingHTTPServer(("127.0.0.1", 0), SlowTwilioMedia)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.TWILIO_API_BASE_URL = f"http://127.0.0.1:{server.server_address[1]}"
    SlowTwilioMedia.go_on = threading.Event()
    SlowTwilioMedia.released_by_listener = []
    yield SlowTwilioMedia
    SlowTwilioMedia.go_on.set()
    server.shutdown()
    server.server_close()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
async def test_recording_streams_through_the_asgi_app_as_twilio_sends_it(
    agent_a, voicemail, slow_twilio_media
):
    client = await database_sync_to_async(lambda: login_as(Client(), agent_a))()
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"

    async def on_body(message, messages) -> None:
        if message.get("more_body") and message.get("body"):
            slow_twilio_media.go_on.set()  # heard the start: Twilio may send the rest

    messages = await asgi_get(
        reverse("telephony:call_recording", args=[voicemail.pk]), cookie=cookie, on_body=on_body
    )
    assert messages[0]["status"] == 200
    assert slow_twilio_media.released_by_listener == [True]
    bodies = body_messages(messages)
    assert b"".join(m.get("body", b"") for m in bodies) == LONG_AUDIO
    assert sum(1 for m in bodies if m.get("more_body") and m.get("body", b"")) > 1
    assert not bodies[-1].get("more_body")
