"""Twilio webhooks (signed, CSRF-exempt, TwiML out) and the agents' and supervisors' pages."""

from __future__ import annotations

import logging

import requests
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from crm import normalize
from crm.access import call_taking_roles, is_supervisor, scoped_or_404
from crm.services import personal_data_access_record
from crm.streaming import aiter_in_thread
from telephony import selectors, services, twiml
from telephony.models import AgentPresence, Call, Disposition
from telephony.twilio_api import recording_media, twilio_webhook, voice_access_token

logger = logging.getLogger("telephony.webhooks")


# --- Webhooks ---------------------------------------------------------------------------------


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def _call(request: HttpRequest, *, leg: bool = False) -> Call | None:
    """The call named by ``?call=`` — and, for the caller's own leg, by the CallSid Twilio sent."""
    call_id = _int(request.GET.get("call"))
    call = Call.objects.filter(pk=call_id).first() if call_id else None
    if call is None:
        sid = request.POST.get("CallSid", "")
        return Call.objects.filter(call_sid=sid).first() if sid else None
    sent_sid = request.POST.get("ParentCallSid" if leg else "CallSid", "")
    if call.call_sid and sent_sid and call.call_sid != sent_sid:
        logger.warning("Webhook for call %s carried CallSid %s", call.pk, sent_sid)
        return None
    return call


def _next_to_twiml(step: services.Next) -> HttpResponse:
    call = step.call
    match step.kind:
        case "unknown_number":
            return twiml.twiml(twiml.unknown_number())
        case "suspended":
            return twiml.twiml(twiml.suspended(message=step.message))
        case "closed":
            return twiml.twiml(twiml.closed(call_id=call.pk, message=step.message))
        case "menu":
            return twiml.twiml(
                twiml.menu(
                    call_id=call.pk,
                    greeting=step.message,
                    options=step.settings.ivr_options,
                    attempt=step.attempt,
                    notice=step.notice,
                )
            )
        case "ring":
            return twiml.twiml(
                twiml.ring(
                    call_id=call.pk,
                    targets=step.targets,
                    timeout=step.settings.ring_timeout_seconds,
                    record=step.settings.record_calls,
                    announce=step.announce,
                )
            )
        case "enqueue":
            return twiml.twiml(twiml.enqueue(call_id=call.pk, queue_name=step.message))
        case "voicemail":
            return twiml.twiml(twiml.offer_voicemail(call_id=call.pk))
        case "voicemail_done":
            return twiml.twiml(twiml.voicemail_done())
        case "hold":
            return twiml.twiml(twiml.hold(message=step.message))
        case "leave":
            return twiml.twiml(twiml.leave_queue())
        case "whisper":
            return twiml.twiml(twiml.agent_whisper(municipality_name=call.municipality.name))
        case "hangup":
            return twiml.twiml(twiml.hangup())
    return twiml.twiml(twiml.empty())


def _answer_once(
    request: HttpRequest, call: Call, key: str, decide, *, leg: str = "parent"
) -> HttpResponse:
    """TwiML for this webhook, the same for every retry of it (see services.answer_once)."""

    def handle(locked: Call, previous: str | None) -> str:
        step = decide(locked)
        if step.kind == "empty" and leg == "parent" and previous and not step.call.is_ended:
            # An empty <Response/> would hang up on the caller mid-call: keep doing what the
            # last answer said.
            return previous
        return _next_to_twiml(step).content.decode()

    body = services.answer_once(call=call, leg=leg, key=key, payload=request.POST, handle=handle)
    return HttpResponse(body, content_type="text/xml; charset=utf-8")


def _gone() -> HttpResponse:
    # Twilio reads a 200 with <Hangup/>; an error status would make it play its own apology.
    return twiml.twiml(twiml.hangup())


@twilio_webhook
def voice_inbound(request: HttpRequest) -> HttpResponse:
    step = services.inbound_call_receive(
        call_sid=request.POST.get("CallSid", ""),
        to=request.POST.get("To", ""),
        from_=request.POST.get("From", ""),
        # Twilio's voice request carries no timestamp: the call arrives now.
        at=timezone.now(),
        payload=request.POST,
    )
    return _next_to_twiml(step)


@twilio_webhook
def voice_menu(request: HttpRequest) -> HttpResponse:
    call = _call(request)
    if call is None:
        return _gone()
    digits = request.POST.get("Digits", "").strip()
    attempt = _int(request.GET.get("attempt")) or 1
    return _answer_once(
        request,
        call,
        f"menu:{digits}:{attempt}",
        lambda locked: services.ivr_choice_receive(
            call=locked, digits=digits, attempt=attempt, payload=request.POST
        ),
    )


@twilio_webhook
def voice_wait(request: HttpRequest) -> HttpResponse:
    call = _call(request)
    if call is None:
        return twiml.twiml(twiml.leave_queue())
    step = services.queue_wait_tick(
        call=call,
        queue_position=_int(request.POST.get("QueuePosition")) or 0,
        payload=request.POST,
    )
    return _next_to_twiml(step)


@twilio_webhook
def voice_queue_exit(request: HttpRequest) -> HttpResponse:
    call = _call(request)
    if call is None:
        return _gone()
    result = request.POST.get("QueueResult", "")
    # QueueTime tells two stays in the queue apart; a retry of one carries the same.
    return _answer_once(
        request,
        call,
        f"queue-exit:{result}:{request.POST.get('QueueTime', '')}",
        lambda locked: services.queue_exit(call=locked, result=result, payload=request.POST),
    )


@twilio_webhook
def voice_agent(request: HttpRequest) -> HttpResponse:
    call = _call(request, leg=True)
    agent_id = _int(request.GET.get("agent"))
    if call is None or agent_id is None:
        return _gone()
    return _answer_once(
        request,
        call,
        "answer",
        lambda locked: services.agent_leg_answered(
            call=locked, agent_id=agent_id, payload=request.POST
        ),
        leg=f"agent-{agent_id}",
    )


@twilio_webhook
def voice_dial_done(request: HttpRequest) -> HttpResponse:
    call = _call(request)
    if call is None:
        return _gone()
    dial_status = request.POST.get("DialCallStatus", "")
    # DialCallSid tells two <Dial>s of one call apart; a retry of one carries the same.
    return _answer_once(
        request,
        call,
        f"dial-done:{dial_status}:{request.POST.get('DialCallSid', '')}",
        lambda locked: services.dial_finished(
            call=locked, dial_status=dial_status, payload=request.POST
        ),
    )


@twilio_webhook
def voice_voicemail(request: HttpRequest) -> HttpResponse:
    call = _call(request)
    if call is None:
        return _gone()
    return _answer_once(
        request,
        call,
        f"voicemail:{request.POST.get('RecordingSid', '')}",
        lambda locked: services.voicemail_recorded(call=locked, payload=request.POST),
    )


@twilio_webhook
def voice_outbound(request: HttpRequest) -> HttpResponse:
    """The agent answered their leg of a call-back: dial the donor from the city's number."""
    call_id = _int(request.GET.get("call"))
    call = Call.objects.filter(pk=call_id, direction=Call.Direction.OUTBOUND).first()
    if call is None or call.placed_by_id is None:
        return _gone()
    return twiml.twiml(
        twiml.outbound_bridge(
            call_id=call.pk,
            agent_id=call.placed_by_id,
            to_e164=call.from_e164,
            caller_id=call.to_e164,
            record=True,
        )
    )


@twilio_webhook
def status_call(request: HttpRequest) -> HttpResponse:
    call = _call(request)
    if call is None:
        logger.info("Status callback for unknown call %s", request.POST.get("CallSid"))
        return HttpResponse(status=204)
    if call.call_sid is None and request.POST.get("CallSid"):
        # A call-back's status may arrive before the REST response gave us its sid.
        Call.objects.filter(pk=call.pk, call_sid__isnull=True).update(
            call_sid=request.POST["CallSid"]
        )
        call.refresh_from_db()
    services.call_status_receive(
        call=call,
        twilio_status=request.POST.get("CallStatus", ""),
        sequence=_int(request.POST.get("SequenceNumber")),
        at=services.twilio_time(request.POST.get("Timestamp")),
        payload=request.POST,
    )
    return HttpResponse(status=204)


@twilio_webhook
def status_agent_leg(request: HttpRequest) -> HttpResponse:
    call = _call(request, leg=True)
    agent_id = _int(request.GET.get("agent"))
    if call is None or agent_id is None:
        return HttpResponse(status=204)
    services.agent_leg_status(
        call=call,
        agent_id=agent_id,
        twilio_status=request.POST.get("CallStatus", ""),
        sequence=_int(request.POST.get("SequenceNumber")),
        payload=request.POST,
    )
    return HttpResponse(status=204)


@twilio_webhook
def status_recording(request: HttpRequest) -> HttpResponse:
    call = _call(request)
    if call is None:
        return HttpResponse(status=204)
    services.recording_status_receive(
        call=call,
        recording_sid=request.POST.get("RecordingSid", ""),
        recording_url=request.POST.get("RecordingUrl", ""),
        recording_status=request.POST.get("RecordingStatus", ""),
        duration=request.POST.get("RecordingDuration"),
        payload=request.POST,
    )
    return HttpResponse(status=204)


# --- Pages ------------------------------------------------------------------------------------


def _back(request: HttpRequest, default: str = "telephony:agent") -> HttpResponse:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return redirect(target)
    return redirect(default)


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _operator_staff(request: HttpRequest) -> None:
    if not request.user.is_operator_staff:
        raise PermissionDenied


@login_required
@require_GET
def agent_page(request: HttpRequest) -> HttpResponse:
    """電話: the incoming-call panel on its own, for agents working without the console."""
    _operator_staff(request)
    return render(request, "telephony/agent.html", _panel_context(request))


def _panel_context(request: HttpRequest) -> dict:
    presence = services.presence_for(request.user)
    return {
        "presence": presence,
        "presence_states": services.AGENT_SETTABLE_STATES,
        "state_labels": dict(AgentPresence.State.choices),
        "dispositions": Disposition.objects.filter(active=True),
        "pending_wrap_up": services.pending_wrap_up(request.user),
    }


@login_required
@require_POST
def presence_update(request: HttpRequest) -> HttpResponse:
    _operator_staff(request)
    try:
        presence = services.agent_presence_set(
            actor=request.user,
            state=request.POST.get("state", ""),
            reason=request.POST.get("reason", ""),
        )
    except ValidationError as exc:
        if _wants_json(request):
            return JsonResponse({"error": exc.messages[0]}, status=409)
        messages.error(request, exc.messages[0])
        return _back(request)
    if _wants_json(request):
        return JsonResponse({"presence": presence.state, "label": presence.get_state_display()})
    return _back(request)


@login_required
@require_POST
def call_wrap_up(request: HttpRequest, call_id: int) -> HttpResponse:
    _operator_staff(request)
    call = scoped_or_404(Call.objects.all(), request.user, pk=call_id)
    disposition = get_object_or_404(
        Disposition, code=request.POST.get("disposition", ""), active=True
    )
    try:
        services.call_wrap_up(
            actor=request.user,
            call=call,
            disposition=disposition,
            note=request.POST.get("note", ""),
            next_state=request.POST.get("next_state") or AgentPresence.State.AVAILABLE,
            **_wrap_up_inquiry(request),
        )
    except ValidationError as exc:
        if _wants_json(request):
            return JsonResponse({"error": exc.messages[0]}, status=409)
        messages.error(request, exc.messages[0])
        return _back(request)
    if _wants_json(request):
        return JsonResponse({"ok": True})
    messages.success(request, "後処理を登録しました。")
    return _back(request)


def _picked(request: HttpRequest, group: str, prefix: str, field: str) -> int | None:
    """An id from a radio group of the pop's dialog (``requester=d12``, ``about=s34``), or from
    its own field (``donor=12``)."""
    choice = request.POST.get(group, "")
    if choice.startswith(prefix):
        return _int(choice[len(prefix) :])
    return _int(request.POST.get(field))


def _wrap_up_inquiry(request: HttpRequest) -> dict:
    """Which inquiry the wrap-up form chose: ``inquiry`` = an id, or ``quick`` for その場で回答."""
    choice = request.POST.get("inquiry", "")
    if choice == "quick":
        return {
            "quick_answer": services.QuickAnswer(
                category=request.POST.get("answer_category", ""),
                note=request.POST.get("answer_note", ""),
                donor_id=_picked(request, "requester", "d", "donor"),
                provider_id=_picked(request, "requester", "p", "provider"),
            )
        }
    return {"inquiry_id": _int(choice)}


@login_required
@require_POST
def call_ticket_start(request: HttpRequest, call_id: int) -> HttpResponse:
    """問合せを開始 from the pop's dialog: a ticket assigned to the agent, with the call, the
    chosen donor or provider, and the donation/shipment the caller is about linked."""
    _operator_staff(request)
    call = scoped_or_404(Call.objects.select_related("municipality"), request.user, pk=call_id)
    try:
        inquiry = services.call_ticket_start(
            actor=request.user,
            call=call,
            donor_id=_picked(request, "requester", "d", "donor"),
            provider_id=_picked(request, "requester", "p", "provider"),
            donation_id=_picked(request, "about", "d", "donation"),
            shipment_id=_picked(request, "about", "s", "shipment"),
            category=request.POST.get("category") or None,
            title=request.POST.get("title", ""),
        )
    except ValidationError as exc:
        if _wants_json(request):
            return JsonResponse({"error": exc.messages[0]}, status=409)
        messages.error(request, exc.messages[0])
        return _back(request)
    url = selectors.inquiry_url(inquiry.pk)
    if _wants_json(request):
        return JsonResponse({"inquiry_id": inquiry.pk, "url": url})
    return redirect(url) if url else _back(request)


@login_required
@require_POST
def call_back(request: HttpRequest, inquiry_id: int) -> HttpResponse:
    """折り返し電話 from a ticket."""
    from tickets.models import Inquiry

    _operator_staff(request)
    inquiry = scoped_or_404(Inquiry.objects.select_related("donor"), request.user, pk=inquiry_id)
    try:
        call = services.call_back_place(
            actor=request.user, inquiry=inquiry, to=request.POST.get("to", "")
        )
    except ValidationError as exc:
        if _wants_json(request):
            return JsonResponse({"error": exc.messages[0]}, status=409)
        messages.error(request, exc.messages[0])
        return _back(request)
    if _wants_json(request):
        return JsonResponse({"call_id": call.pk})
    messages.success(
        request,
        f"折り返し電話（{normalize.format_phone_national(call.from_e164)}）を発信しています。"
        "お手元の電話に出てください。",
    )
    return _back(request)


@login_required
@require_GET
def call_pop(request: HttpRequest, call_id: int) -> HttpResponse:
    """The same payload the websocket pushes, for a page that (re)loads mid-call."""
    _operator_staff(request)
    payload = selectors.screen_pop_payload(user=request.user, call_id=call_id)
    if payload is None:
        return JsonResponse({"error": "not found"}, status=404)
    return JsonResponse(payload)


def _range_start(byte_range: str) -> int | None:
    """Where a ``Range: bytes=N-…`` request starts (None: no or an unreadable range)."""
    unit, _, spec = byte_range.partition("=")
    start = spec.split(",", 1)[0].split("-", 1)[0].strip()
    return int(start) if unit.strip() == "bytes" and start.isdigit() else None


@login_required
@require_GET
def call_recording(request: HttpRequest, call_id: int) -> HttpResponse:
    """録音の再生: the call's recording, fetched from Twilio with our credentials and passed on.

    Browsers cannot be given Twilio's URL (it needs the account's credentials), so the audio
    goes through us, for operator staff who may see the call, and for city officials only where
    their city allows it and the call belongs to an inquiry they may see.
    """
    call = scoped_or_404(Call.objects.all(), request.user, pk=call_id)
    if not call.recording_sid:
        raise Http404
    if not selectors.recordings_playable_by(request.user).filter(pk=call.pk).exists():
        raise PermissionDenied
    byte_range = request.headers.get("Range", "")
    try:
        upstream = recording_media(call.recording_sid, byte_range=byte_range)
    except (ValueError, requests.RequestException):
        logger.warning("Recording %s of call %s unavailable", call.recording_sid, call.pk)
        return HttpResponse("録音を取得できませんでした。", status=502)
    if upstream.status_code not in (200, 206):
        logger.warning(
            "Twilio answered %s for recording %s", upstream.status_code, call.recording_sid
        )
        upstream.close()
        return HttpResponse("録音を取得できませんでした。", status=502)
    # Every listening is logged. A player starts each one from the first byte (with no Range,
    # or a range from 0) and seeks with ranges further on: those belong to the same listening.
    if not byte_range or _range_start(byte_range) == 0:
        personal_data_access_record(
            user=request.user,
            action="view",
            record_type="call_recording",
            record_id=call.pk,
            municipality_id=call.municipality_id,
            request=request,
        )
    # Passed on chunk by chunk as Twilio sends it (an async iterator, or ASGI would buffer it).
    response = StreamingHttpResponse(
        aiter_in_thread(upstream.iter_content(64 * 1024), on_close=upstream.close),
        status=upstream.status_code,
        content_type="audio/mpeg",
    )
    for header in ("Content-Length", "Content-Range", "Accept-Ranges"):
        if header in upstream.headers:
            response[header] = upstream.headers[header]
    response["Cache-Control"] = "private, no-store"
    response["Content-Disposition"] = f'inline; filename="call-{call.pk}.mp3"'
    return response


@login_required
@require_GET
def voice_token(request: HttpRequest) -> HttpResponse:
    _operator_staff(request)
    token = voice_access_token(f"agent-{request.user.pk}")
    if token is None:
        return JsonResponse({"error": "ソフトフォンは設定されていません。"}, status=404)
    return JsonResponse({"token": token, "identity": f"agent-{request.user.pk}"})


@login_required
@require_POST
def agent_presence_reset(request: HttpRequest, user_id: int) -> HttpResponse:
    """ウォールボードから担当者の状態を戻す: only agents of the supervisor's municipalities."""
    from crm.access import visible_municipality_ids
    from crm.models import User

    if not is_supervisor(request.user):
        raise PermissionDenied
    agent = get_object_or_404(
        User.objects.filter(
            role__in=call_taking_roles(),
            municipalities__in=visible_municipality_ids(request.user),
        ).distinct(),
        pk=user_id,
    )
    try:
        services.agent_presence_reset(
            actor=request.user,
            agent=agent,
            state=request.POST.get("state") or AgentPresence.State.BREAK,
            request=request,
        )
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
        return _back(request, "telephony:wallboard")
    messages.success(request, f"{agent} の状態を変更しました。")
    return _back(request, "telephony:wallboard")


@login_required
@require_GET
def wallboard(request: HttpRequest) -> HttpResponse:
    """監督者のウォールボード: scoped to the supervisor's municipalities."""
    from crm.models import Municipality

    if not is_supervisor(request.user):
        raise PermissionDenied
    requested = [int(v) for v in request.GET.getlist("municipality") if v.isdigit()]
    ids = selectors.wallboard_municipality_ids(request.user, requested)
    if requested and not ids:
        raise Http404
    stats = selectors.wallboard_stats(ids, now=timezone.now())
    municipalities = Municipality.objects.visible_to(request.user).order_by("code")
    return render(
        request,
        "telephony/wallboard.html",
        {
            "stats": stats,
            "municipalities": municipalities,
            "selected": requested,
            "ws_query": "&".join(f"municipality={m}" for m in requested),
        },
    )
