"""TwiML the webhooks answer with. Pure functions of their arguments: no database access."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpResponse
from twilio.twiml.voice_response import VoiceResponse

from telephony.twilio_api import public_url

LANGUAGE = "ja-JP"
MAX_MENU_ATTEMPTS = 3
HOLD_PAUSE_SECONDS = 8

INVALID_INPUT = "入力が正しくありません。"
NO_INPUT = "入力が確認できませんでした。"
UNKNOWN_NUMBER = "おかけになった電話番号は現在使われておりません。"
VOICEMAIL_PROMPT = "発信音の後に、お名前とご用件、折り返しのお電話番号をお話しください。録音が終わりましたら電話をお切りください。"
VOICEMAIL_BUSY = "ただいま電話が大変混み合っており、おつなぎできません。"
VOICEMAIL_THANKS = "メッセージをお預かりしました。担当者より折り返しご連絡いたします。お電話ありがとうございました。"
VOICEMAIL_FAILED = "録音できませんでした。恐れ入りますが、おかけ直しください。"
CONNECTING = "担当者におつなぎします。"


@dataclass(frozen=True)
class RingTarget:
    """One agent to ring: the browser softphone identity, or a phone number."""

    agent_id: int
    client_identity: str
    phone_e164: str = ""


def _say(node, text: str) -> None:
    voice = settings.TELEPHONY_SAY_VOICE or None
    node.say(text, language=LANGUAGE, voice=voice)


def twiml(response: VoiceResponse) -> HttpResponse:
    return HttpResponse(str(response), content_type="text/xml; charset=utf-8")


def menu(
    *, call_id: int, greeting: str, options: dict[str, dict[str, str]], attempt: int, notice: str
) -> VoiceResponse:
    """Greeting (first time only) and the menu; no input re-prompts until MAX_MENU_ATTEMPTS."""
    response = VoiceResponse()
    gather = response.gather(
        num_digits=1,
        timeout=6,
        action=public_url("voice_menu", call=call_id, attempt=attempt),
        action_on_empty_result=True,
    )
    if notice:
        _say(gather, notice)
    if attempt == 1:
        _say(gather, greeting)
    prompt = "".join(f"{opt['label']}は{digit}を、" for digit, opt in sorted(options.items()))
    _say(gather, prompt.rstrip("、") + "押してください。")
    return response


def closed(*, call_id: int, message: str) -> VoiceResponse:
    response = VoiceResponse()
    _say(response, message)
    _voicemail(response, call_id)
    return response


def offer_voicemail(*, call_id: int) -> VoiceResponse:
    response = VoiceResponse()
    _say(response, VOICEMAIL_BUSY)
    _voicemail(response, call_id)
    return response


def _voicemail(response: VoiceResponse, call_id: int) -> None:
    _say(response, VOICEMAIL_PROMPT)
    response.record(
        action=public_url("voice_voicemail", call=call_id),
        max_length=settings.TELEPHONY_VOICEMAIL_MAX_SECONDS,
        play_beep=True,
        trim="trim-silence",
        recording_status_callback=public_url("status_recording", call=call_id),
        recording_status_callback_event="completed absent failed",
    )
    # Reached only when nothing was recorded.
    _say(response, VOICEMAIL_FAILED)
    response.hangup()


def voicemail_done() -> VoiceResponse:
    response = VoiceResponse()
    _say(response, VOICEMAIL_THANKS)
    response.hangup()
    return response


def ring(
    *,
    call_id: int,
    targets: Sequence[RingTarget],
    timeout: int,
    record: bool,
    caller_id: str | None = None,
    announce: bool = True,
) -> VoiceResponse:
    """Ring several agents at once; the first to answer gets the call (Twilio cancels the rest)."""
    response = VoiceResponse()
    if announce:
        _say(response, CONNECTING)
    dial = response.dial(
        action=public_url("voice_dial_done", call=call_id),
        timeout=timeout,
        answer_on_bridge=True,
        caller_id=caller_id,
        record="record-from-answer-dual" if record else None,
        recording_status_callback=public_url("status_recording", call=call_id) if record else None,
    )
    for target in targets:
        leg = {
            "url": public_url("voice_agent", call=call_id, agent=target.agent_id),
            "status_callback": public_url("status_agent_leg", call=call_id, agent=target.agent_id),
            "status_callback_event": "initiated ringing answered completed",
        }
        if target.phone_e164:
            dial.number(target.phone_e164, **leg)
        else:
            dial.client(target.client_identity, **leg)
    return response


def enqueue(*, call_id: int, queue_name: str) -> VoiceResponse:
    response = VoiceResponse()
    response.enqueue(
        queue_name,
        wait_url=public_url("voice_wait", call=call_id),
        wait_url_method="POST",
        action=public_url("voice_queue_exit", call=call_id),
    )
    return response


def hold(*, message: str) -> VoiceResponse:
    """Played while waiting; Twilio asks the wait URL again when it ends."""
    response = VoiceResponse()
    _say(response, message)
    response.pause(length=HOLD_PAUSE_SECONDS)
    return response


def leave_queue() -> VoiceResponse:
    response = VoiceResponse()
    response.leave()
    return response


def agent_whisper(*, municipality_name: str) -> VoiceResponse:
    """Heard by the agent only, before the caller is connected: which city's line this is."""
    response = VoiceResponse()
    _say(response, f"{municipality_name}のお電話です。")
    return response


def outbound_bridge(
    *, call_id: int, agent_id: int, to_e164: str, caller_id: str, record: bool
) -> VoiceResponse:
    """The agent has picked up the call-back leg: now ring the donor."""
    response = VoiceResponse()
    dial = response.dial(
        action=public_url("voice_dial_done", call=call_id),
        caller_id=caller_id,
        answer_on_bridge=True,
        record="record-from-answer-dual" if record else None,
        recording_status_callback=public_url("status_recording", call=call_id) if record else None,
    )
    dial.number(
        to_e164,
        url=public_url("voice_agent", call=call_id, agent=agent_id),
        status_callback=public_url("status_agent_leg", call=call_id, agent=agent_id),
        status_callback_event="initiated ringing answered completed",
    )
    return response


def unknown_number() -> VoiceResponse:
    response = VoiceResponse()
    _say(response, UNKNOWN_NUMBER)
    response.hangup()
    return response


def suspended(*, message: str) -> VoiceResponse:
    """A suspended municipality's line: the notice, then the call ends (no agent rings)."""
    response = VoiceResponse()
    _say(response, message)
    response.hangup()
    return response


def hangup() -> VoiceResponse:
    response = VoiceResponse()
    response.hangup()
    return response


def empty() -> VoiceResponse:
    return VoiceResponse()
