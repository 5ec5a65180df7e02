"""Messages and automated calls sent through Twilio's REST API for other apps (city escalation).

Only telephony imports twilio, so apps above it send SMS and place notification calls through
these functions. Each call is one HTTP request; the outcome is sorted into three kinds, because
what a caller may do next differs:

- ``TwilioRefused``: Twilio answered 4xx (a number it cannot reach, a blocked destination).
  Nothing was sent and asking again will not help.
- ``TwilioUnavailable``: Twilio answered 5xx/429 or could not be reached at all. Nothing was
  sent; asking again later is safe.
- ``TwilioOutcomeUnknown``: the request may have reached Twilio (the answer timed out or the
  connection broke after sending). Asking again could send twice, so callers must not.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import requests
from django.conf import settings
from twilio.base.exceptions import TwilioRestException
from twilio.twiml.voice_response import VoiceResponse

from telephony.twilio_api import rest_client
from telephony.twiml import LANGUAGE

logger = logging.getLogger("telephony.outbound")


class TwilioSendError(Exception):
    """The request did not result in a message or call we know of."""


class TwilioRefused(TwilioSendError):
    pass


class TwilioUnavailable(TwilioSendError):
    pass


class TwilioOutcomeUnknown(TwilioSendError):
    pass


@dataclass(frozen=True)
class Sent:
    sid: str
    status: str


def _classify(exc: Exception) -> TwilioSendError:
    if isinstance(exc, TwilioRestException):
        text = f"Twilio {exc.status} ({exc.code}): {exc.msg}"
        if exc.status == 429 or exc.status >= 500:
            return TwilioUnavailable(text)
        return TwilioRefused(text)
    # A connect timeout / refused connection never delivered the request.
    if isinstance(exc, requests.exceptions.ConnectTimeout | requests.exceptions.SSLError):
        return TwilioUnavailable(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return TwilioOutcomeUnknown(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, requests.exceptions.ConnectionError):
        # Refused before anything was sent, or reset after: requests cannot tell us which, so
        # only "connection refused" counts as unsent.
        if "refused" in str(exc).lower():
            return TwilioUnavailable(f"{type(exc).__name__}: {exc}")
        return TwilioOutcomeUnknown(f"{type(exc).__name__}: {exc}")
    return TwilioOutcomeUnknown(f"{type(exc).__name__}: {exc}")


def sms_send(*, to: str, body: str, from_: str = "", status_callback: str = "") -> Sent:
    """One SMS. Never retried here: the caller decides, knowing the outcome's kind.
    ``status_callback``: where Twilio posts the delivery status (sent, delivered, failed …)."""
    extra = {"status_callback": status_callback} if status_callback else {}
    try:
        message = rest_client().messages.create(
            to=to, from_=from_ or settings.ESCALATION_SMS_FROM, body=body, **extra
        )
    except Exception as exc:
        raise _classify(exc) from exc
    return Sent(sid=message.sid, status=message.status or "queued")


def acknowledgement_twiml(*, message: str, gather_url: str) -> str:
    """Reads ``message`` and asks the callee to press 1; their key is posted to ``gather_url``."""
    voice = settings.TELEPHONY_SAY_VOICE or None
    response = VoiceResponse()
    gather = response.gather(num_digits=1, timeout=8, action=gather_url, method="POST")
    gather.say(message, language=LANGUAGE, voice=voice)
    gather.say("確認された場合は、1を押してください。", language=LANGUAGE, voice=voice)
    response.say("確認が取れませんでした。メールをご確認ください。", language=LANGUAGE, voice=voice)
    return str(response)


def acknowledged_twiml(acknowledged: bool) -> str:
    voice = settings.TELEPHONY_SAY_VOICE or None
    response = VoiceResponse()
    text = (
        "確認を受け付けました。ありがとうございました。"
        if acknowledged
        else "確認は受け付けられませんでした。メールをご確認ください。"
    )
    response.say(text, language=LANGUAGE, voice=voice)
    response.hangup()
    return str(response)


def voice_call_place(
    *, to: str, message: str, gather_url: str, from_: str = "", status_callback: str = ""
) -> Sent:
    """An automated call that reads ``message`` and asks to press 1 to acknowledge."""
    extra = {"status_callback": status_callback} if status_callback else {}
    try:
        call = rest_client().calls.create(
            to=to,
            from_=from_ or settings.ESCALATION_VOICE_FROM or settings.ESCALATION_SMS_FROM,
            twiml=acknowledgement_twiml(message=message, gather_url=gather_url),
            **extra,
        )
    except Exception as exc:
        raise _classify(exc) from exc
    return Sent(sid=call.sid, status=call.status or "queued")
