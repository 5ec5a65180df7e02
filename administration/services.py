"""The operator admin's writes: municipalities and what answers for them, staff, and each user's
own account. Every change is audited (作業ログ, ``AuditLog.Action.CONFIG_CHANGED``); writes owned
by a lower app go through that app's services."""

from __future__ import annotations

import csv
import datetime
import io
import secrets
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.contrib.auth import password_validation, update_session_auth_hash
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, models, transaction
from django.db.models import ProtectedError
from django.http import HttpRequest
from django.utils import timezone

from crm import normalize
from crm.access import is_operator_admin
from crm.audit import audit_record
from crm.models import (
    AuditLog,
    Carrier,
    CityContact,
    Municipality,
    MunicipalityEmailAddress,
    MunicipalityPhoneNumber,
    Provider,
    User,
)
from crm.services import enrolment_link_issue
from crm.sessions import user_sessions_end
from telephony import calendar_services
from telephony import services as telephony_services
from telephony.lines import rules_changed
from telephony.models import CalendarException, PhoneSettings
from tickets import services as ticket_services
from tickets.mail.services import configuration as mail_configuration

_Row = TypeVar("_Row", bound=models.Model)

MUNICIPALITY_FIELDS = (
    "code",
    "name",
    "name_kana",
    "prefecture",
    "answer_name",
    "residents_excluded",
    "contract_start",
    "contract_end",
    "city_may_play_recordings",
)


def _require_admin(actor: User) -> None:
    if not is_operator_admin(actor):
        raise PermissionDenied("この操作は運営管理者専用です。")


def _audit(actor: User, request: HttpRequest | None, what: str, **detail: Any) -> None:
    audit_record(
        action=AuditLog.Action.CONFIG_CHANGED, request=request, user=actor, what=what, **detail
    )


def _fields_save(row: _Row, fields: dict[str, Any]) -> _Row:
    """Set ``fields`` on ``row``, validate it (the model's rules, uniqueness) and save it."""
    for name, value in fields.items():
        setattr(row, name, value)
    row.full_clean()
    row.save()
    return row


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    return value


# --- Municipalities -------------------------------------------------------------------------


@transaction.atomic
def municipality_save(
    *,
    actor: User,
    request: HttpRequest | None = None,
    municipality: Municipality | None = None,
    **fields: Any,
) -> Municipality:
    """Create (``municipality`` None) or edit a municipality's own fields; the code's check
    digit, uniqueness and the contract period are validated."""
    _require_admin(actor)
    unknown = set(fields) - set(MUNICIPALITY_FIELDS)
    if unknown:
        raise TypeError(f"unknown fields: {sorted(unknown)}")
    creating = municipality is None
    municipality = municipality or Municipality()
    before = {f: _jsonable(getattr(municipality, f)) for f in fields} if not creating else {}
    for name, value in fields.items():
        setattr(municipality, name, value)
    start, end = municipality.contract_start, municipality.contract_end
    if start and end and end < start:
        raise ValidationError({"contract_end": "契約終了日が契約開始日より前です。"})
    municipality.full_clean()
    municipality.save()
    if creating:
        ticket_services.municipality_queue_ensure(municipality=municipality)
    changed = {
        f: [before.get(f), _jsonable(getattr(municipality, f))]
        for f in fields
        if creating or before.get(f) != _jsonable(getattr(municipality, f))
    }
    _audit(
        actor,
        request,
        "municipality.create" if creating else "municipality.update",
        municipality=municipality.code,
        changed=changed,
    )
    return municipality


@transaction.atomic
def municipality_suspend(
    *, actor: User, municipality: Municipality, reason: str = "", request: HttpRequest | None = None
) -> Municipality:
    """Stop answering for the municipality: its calls hear a notice and ring nobody, its mail is
    held as received. Nothing is deleted."""
    _require_admin(actor)
    municipality = Municipality.objects.select_for_update().get(pk=municipality.pk)
    if municipality.suspended_at is None:
        municipality.suspended_at = timezone.now()
        municipality.suspended_reason = reason[:200]
        municipality.save(update_fields=["suspended_at", "suspended_reason"])
        rules_changed()
        _audit(
            actor, request, "municipality.suspend", municipality=municipality.code, reason=reason
        )
    return municipality


@transaction.atomic
def municipality_resume(
    *, actor: User, municipality: Municipality, request: HttpRequest | None = None
) -> Municipality:
    """Answer for the municipality again; mail held meanwhile is processed by the stranded-mail
    sweep (tickets.mail.tasks.mail_process_stranded)."""
    _require_admin(actor)
    municipality = Municipality.objects.select_for_update().get(pk=municipality.pk)
    if municipality.suspended_at is not None:
        municipality.suspended_at = None
        municipality.suspended_reason = ""
        municipality.save(update_fields=["suspended_at", "suspended_reason"])
        rules_changed()
        _audit(actor, request, "municipality.resume", municipality=municipality.code)
    return municipality


def phone_number_normalize(raw: str) -> str:
    e164 = normalize.normalize_phone(raw)
    if e164 is None:
        raise ValidationError({"number": "電話番号として正しくありません。"})
    return e164


@transaction.atomic
def phone_number_add(
    *,
    actor: User,
    municipality: Municipality,
    number: str,
    label: str = "",
    request: HttpRequest | None = None,
) -> MunicipalityPhoneNumber:
    """An inbound number (E.164), unique across all municipalities."""
    _require_admin(actor)
    e164 = phone_number_normalize(number)
    owner = MunicipalityPhoneNumber.objects.filter(e164=e164).select_related("municipality").first()
    if owner is not None:
        raise ValidationError(
            {"number": f"この番号はすでに{owner.municipality.name}に登録されています。"}
        )
    row = MunicipalityPhoneNumber.objects.create(municipality=municipality, e164=e164, label=label)
    _audit(actor, request, "phone_number.add", municipality=municipality.code, e164=e164)
    return row


@transaction.atomic
def phone_number_remove(
    *, actor: User, number: MunicipalityPhoneNumber, request: HttpRequest | None = None
) -> None:
    _require_admin(actor)
    code = number.municipality.code
    number.delete()
    _audit(actor, request, "phone_number.remove", municipality=code, e164=number.e164)


@transaction.atomic
def phone_settings_save(
    *,
    actor: User,
    municipality: Municipality,
    request: HttpRequest | None = None,
    **fields: Any,
) -> PhoneSettings:
    """Greeting, hold message, queue bounds, recording and the IVR menu (digit → label and
    requester type)."""
    _require_admin(actor)
    allowed = {
        "greeting",
        "hold_message",
        "max_queue_wait_seconds",
        "ring_timeout_seconds",
        "record_calls",
        "ivr_options",
    }
    if set(fields) - allowed:
        raise TypeError(f"unknown fields: {sorted(set(fields) - allowed)}")
    phone_settings, _ = PhoneSettings.objects.get_or_create(municipality=municipality)
    _fields_save(phone_settings, fields)
    _audit(
        actor,
        request,
        "phone_settings.update",
        municipality=municipality.code,
        changed=sorted(fields),
    )
    return phone_settings


@transaction.atomic
def inbound_address_add(
    *, actor: User, municipality: Municipality, address: str, request: HttpRequest | None = None
) -> MunicipalityEmailAddress:
    _require_admin(actor)
    existing = MunicipalityEmailAddress.objects.filter(
        address=normalize.normalize_email(address)
    ).first()
    if existing is not None:
        raise ValidationError({"address": "このアドレスはすでに登録されています。"})
    row = mail_configuration.inbound_address_add(municipality=municipality, address=address)
    _audit(
        actor, request, "inbound_address.add", municipality=municipality.code, address=row.address
    )
    return row


@transaction.atomic
def inbound_address_remove(
    *, actor: User, address: MunicipalityEmailAddress, request: HttpRequest | None = None
) -> None:
    _require_admin(actor)
    code, text = address.municipality.code, address.address
    mail_configuration.inbound_address_remove(address=address)
    _audit(actor, request, "inbound_address.remove", municipality=code, address=text)


@transaction.atomic
def mailbox_save(
    *,
    actor: User,
    address: MunicipalityEmailAddress,
    request: HttpRequest | None = None,
    **fields: Any,
):
    _require_admin(actor)
    box = mail_configuration.mailbox_configure(address=address.address, **fields)
    _audit(
        actor,
        request,
        "mailbox.update",
        municipality=address.municipality.code,
        address=address.address,
        changed=sorted(k for k in fields if k != "password"),
    )
    return box


@transaction.atomic
def mail_settings_save(
    *, actor: User, municipality: Municipality, request: HttpRequest | None = None, **fields: Any
):
    prefs = mail_configuration.mail_settings_save(actor=actor, municipality=municipality, **fields)
    _audit(actor, request, "mail_settings.update", municipality=municipality.code)
    return prefs


# --- Business calendar (telephony's services) ------------------------------------------------


@transaction.atomic
def calendar_preset_apply(
    *,
    actor: User,
    municipality: Municipality,
    preset: str,
    opens: datetime.time,
    closes: datetime.time,
    request: HttpRequest | None = None,
) -> None:
    _require_admin(actor)
    if preset not in calendar_services.CALENDAR_PRESETS:
        raise ValidationError({"preset": "受付時間の型を選んでください。"})
    if not opens < closes:
        raise ValidationError({"closes": "終了時刻は開始時刻より後にしてください。"})
    calendar_services.business_calendar_apply_preset(
        municipality=municipality, preset=preset, opens=opens, closes=closes
    )
    _audit(
        actor,
        request,
        "calendar.preset",
        municipality=municipality.code,
        preset=preset,
        opens=opens.isoformat(),
        closes=closes.isoformat(),
    )


@transaction.atomic
def calendar_weekly_hours_set(
    *,
    actor: User,
    municipality: Municipality,
    hours: dict[int, tuple[datetime.time, datetime.time] | None],
    open_on_holidays: bool,
    request: HttpRequest | None = None,
) -> None:
    _require_admin(actor)
    calendar_services.weekly_hours_set(
        municipality=municipality, hours=hours, open_on_holidays=open_on_holidays
    )
    _audit(
        actor,
        request,
        "calendar.weekly_hours",
        municipality=municipality.code,
        hours={
            str(d): [s[0].isoformat(), s[1].isoformat()] if s else None for d, s in hours.items()
        },
        open_on_holidays=open_on_holidays,
    )


@transaction.atomic
def calendar_exception_add(
    *, actor: User, municipality: Municipality, request: HttpRequest | None = None, **fields: Any
) -> CalendarException:
    _require_admin(actor)
    exc = calendar_services.calendar_exception_add(municipality=municipality, **fields)
    _audit(
        actor,
        request,
        "calendar.exception_add",
        municipality=municipality.code,
        **{k: _jsonable(v) for k, v in fields.items()},
    )
    return exc


@transaction.atomic
def calendar_exception_delete(
    *, actor: User, exception: CalendarException, request: HttpRequest | None = None
) -> None:
    _require_admin(actor)
    code, label = exception.municipality.code, exception.label
    calendar_services.calendar_exception_delete(exception=exception)
    _audit(actor, request, "calendar.exception_delete", municipality=code, label=label)


# --- City contacts, providers, carriers -------------------------------------------------------


@transaction.atomic
def city_contact_save(
    *,
    actor: User,
    municipality: Municipality,
    contact: CityContact | None = None,
    request: HttpRequest | None = None,
    **fields: Any,
) -> CityContact:
    _require_admin(actor)
    if "phone" in fields and fields["phone"]:
        fields["phone"] = phone_number_normalize(fields["phone"])
    contact = _fields_save(contact or CityContact(municipality=municipality), fields)
    _audit(actor, request, "city_contact.save", municipality=municipality.code, contact=contact.pk)
    return contact


@transaction.atomic
def city_contact_delete(
    *, actor: User, contact: CityContact, request: HttpRequest | None = None
) -> None:
    _require_admin(actor)
    code, pk = contact.municipality.code, contact.pk
    try:
        with transaction.atomic():
            contact.delete()
    except ProtectedError as exc:
        raise ValidationError("この担当者は記録から参照されているため削除できません。") from exc
    _audit(actor, request, "city_contact.delete", municipality=code, contact=pk)


@transaction.atomic
def provider_save(
    *,
    actor: User,
    municipality: Municipality,
    provider: Provider | None = None,
    request: HttpRequest | None = None,
    **fields: Any,
) -> Provider:
    _require_admin(actor)
    if fields.get("phone"):
        fields["phone"] = phone_number_normalize(fields["phone"])
    provider = _fields_save(provider or Provider(municipality=municipality), fields)
    _audit(actor, request, "provider.save", municipality=municipality.code, provider=provider.code)
    return provider


@transaction.atomic
def carrier_save(
    *, actor: User, carrier: Carrier | None = None, request: HttpRequest | None = None, **fields
) -> Carrier:
    _require_admin(actor)
    carrier = _fields_save(carrier or Carrier(), fields)
    _audit(actor, request, "carrier.save", carrier=carrier.code)
    return carrier


# --- Onboarding: everything a new municipality needs, in one go ------------------------------


@dataclass
class Onboarding:
    municipality: dict[str, Any]
    phone_number: str
    phone_label: str
    inbound_address: str
    calendar_preset: str
    opens: datetime.time
    closes: datetime.time
    contacts: list[dict[str, Any]] = field(default_factory=list)
    staff: list[User] = field(default_factory=list)


@transaction.atomic
def municipality_onboard(
    *, actor: User, onboarding: Onboarding, request: HttpRequest | None = None
) -> Municipality:
    """Municipality → number → mail address → calendar → contacts → staff, all or nothing."""
    _require_admin(actor)
    municipality = municipality_save(actor=actor, request=request, **onboarding.municipality)
    PhoneSettings.objects.get_or_create(municipality=municipality)
    phone_number_add(
        actor=actor,
        municipality=municipality,
        number=onboarding.phone_number,
        label=onboarding.phone_label,
        request=request,
    )
    inbound_address_add(
        actor=actor, municipality=municipality, address=onboarding.inbound_address, request=request
    )
    calendar_preset_apply(
        actor=actor,
        municipality=municipality,
        preset=onboarding.calendar_preset,
        opens=onboarding.opens,
        closes=onboarding.closes,
        request=request,
    )
    for order, contact in enumerate(onboarding.contacts, start=1):
        city_contact_save(
            actor=actor,
            municipality=municipality,
            request=request,
            escalation_order=order,
            **contact,
        )
    for user in onboarding.staff:
        if user.role == User.Role.CITY_OFFICIAL:
            raise ValidationError({"staff": "自治体職員はここでは割り当てられません。"})
        user.municipalities.add(municipality)
    if onboarding.staff:
        _audit(
            actor,
            request,
            "staff.assign",
            municipality=municipality.code,
            users=[u.get_username() for u in onboarding.staff],
        )
    return municipality


@transaction.atomic
def municipality_staff_set(
    *,
    actor: User,
    municipality: Municipality,
    users: list[User],
    request: HttpRequest | None = None,
) -> None:
    """Who of the operator's agents and supervisors serves this municipality (city officials and
    operator admins are assigned on their own pages). Open sockets re-scope at once."""
    _require_admin(actor)
    wanted = {u.pk for u in users}
    if any(u.role not in (User.Role.AGENT, User.Role.SUPERVISOR) for u in users):
        raise ValidationError("ここで割り当てられるのはオペレーターとスーパーバイザーだけです。")
    current = set(
        municipality.staff.filter(role__in=[User.Role.AGENT, User.Role.SUPERVISOR]).values_list(
            "pk", flat=True
        )
    )
    added, removed = wanted - current, current - wanted
    if added:
        municipality.staff.add(*added)
    if removed:
        municipality.staff.remove(*removed)
    names = dict(User.objects.filter(pk__in=added | removed).values_list("pk", "username"))
    _audit(
        actor,
        request,
        "staff.assign",
        municipality=municipality.code,
        added=sorted(names[pk] for pk in added),
        removed=sorted(names[pk] for pk in removed),
    )


# --- Staff --------------------------------------------------------------------------------------


def temporary_password() -> str:
    """A one-time password meeting every validator (upper, lower, digit, symbol, length)."""
    return secrets.token_urlsafe(12) + "Aa1!"


def _validate_municipalities(role: str, municipalities: list[Municipality]) -> None:
    if role == User.Role.CITY_OFFICIAL and len(municipalities) != 1:
        raise ValidationError(
            {"municipalities": "自治体職員には自治体を1つだけ割り当ててください。"}
        )


@dataclass
class NewStaff:
    username: str
    display_name: str
    role: str
    municipalities: list[Municipality]
    email: str = ""
    password: str = ""  # empty: a temporary one is made


@dataclass
class CreatedStaff:
    user: User
    password: str  # shown once
    enrolment_token: str | None  # operator staff enrol an authenticator with it


def _staff_create(*, actor: User, new: NewStaff, request: HttpRequest | None) -> CreatedStaff:
    if new.role not in User.Role.values:
        raise ValidationError({"role": "役割が正しくありません。"})
    if User.objects.filter(username__iexact=new.username).exists():
        raise ValidationError({"username": "この利用者名はすでに使われています。"})
    _validate_municipalities(new.role, new.municipalities)
    password = new.password or temporary_password()
    user = User(
        username=new.username, display_name=new.display_name, role=new.role, email=new.email
    )
    user.full_clean(exclude=["password"])
    password_validation.validate_password(password, user)
    user.set_password(password)
    user.save()
    user.municipalities.set(new.municipalities)
    token = None
    if user.is_operator_staff:
        token = enrolment_link_issue(actor=actor, user=user, request=request)
    _audit(
        actor,
        request,
        "staff.create",
        target=user.get_username(),
        role=user.role,
        municipalities=[m.code for m in new.municipalities],
    )
    return CreatedStaff(user=user, password=password, enrolment_token=token)


@transaction.atomic
def staff_create(*, actor: User, new: NewStaff, request: HttpRequest | None = None) -> CreatedStaff:
    _require_admin(actor)
    return _staff_create(actor=actor, new=new, request=request)


@transaction.atomic
def staff_update(
    *,
    actor: User,
    user: User,
    role: str,
    display_name: str,
    email: str,
    municipalities: list[Municipality],
    request: HttpRequest | None = None,
) -> User:
    """Role and assignments; open sockets re-check at once (crm.sessions)."""
    _require_admin(actor)
    if user.pk == actor.pk and role != User.Role.OPERATOR_ADMIN:
        raise ValidationError({"role": "自分自身の運営管理者の役割は外せません。"})
    _validate_municipalities(role, municipalities)
    before = (user.role, sorted(user.municipalities.values_list("code", flat=True)))
    user.role, user.display_name, user.email = role, display_name, email
    user.full_clean(exclude=["password"])
    user.save()
    user.municipalities.set(municipalities)
    _audit(
        actor,
        request,
        "staff.update",
        target=user.get_username(),
        before={"role": before[0], "municipalities": before[1]},
        after={"role": role, "municipalities": sorted(m.code for m in municipalities)},
    )
    return user


@transaction.atomic
def staff_deactivate(*, actor: User, user: User, request: HttpRequest | None = None) -> int:
    """The account can no longer log in; its sessions end and its sockets close now."""
    _require_admin(actor)
    if user.pk == actor.pk:
        raise ValidationError("自分自身は無効にできません。")
    user.is_active = False
    user.save(update_fields=["is_active"])
    ended = user_sessions_end(user_id=user.pk)
    # Off the wallboard at once (routing already skips inactive accounts).
    telephony_services.agent_disconnected(user_id=user.pk)
    _audit(actor, request, "staff.deactivate", target=user.get_username(), sessions=ended)
    return ended


@transaction.atomic
def staff_reactivate(*, actor: User, user: User, request: HttpRequest | None = None) -> None:
    _require_admin(actor)
    user.is_active = True
    user.save(update_fields=["is_active"])
    _audit(actor, request, "staff.reactivate", target=user.get_username())


@transaction.atomic
def staff_password_reset(*, actor: User, user: User, request: HttpRequest | None = None) -> str:
    """A temporary password (returned, shown once); the user's sessions end."""
    _require_admin(actor)
    password = temporary_password()
    user.set_password(password)
    user.save(update_fields=["password"])
    ended = user_sessions_end(user_id=user.pk)
    _audit(actor, request, "staff.password_reset", target=user.get_username(), sessions=ended)
    return password


# --- Bulk creation from CSV ---------------------------------------------------------------------

CSV_COLUMNS = ("username", "display_name", "role", "municipalities", "email")
ROLE_WORDS = {label: value for value, label in User.Role.choices} | {
    value: value for value in User.Role.values
}


@dataclass
class RowError:
    line: int
    reason: str


class BulkRefused(Exception):
    """Some rows are wrong: nothing was created."""

    def __init__(self, errors: list[RowError]):
        super().__init__(f"{len(errors)} rows refused")
        self.errors = errors


def decode_csv(data: bytes) -> str:
    """UTF-8 (with or without BOM) or CP932 (Excel's Japanese CSV)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            return data.decode("cp932")
        except UnicodeDecodeError as exc:
            raise BulkRefused(
                [RowError(1, "文字コードはUTF-8かCP932（Shift_JIS）にしてください。")]
            ) from exc


def _parse_rows(text: str) -> tuple[list[tuple[int, NewStaff]], list[RowError]]:
    reader = csv.reader(io.StringIO(text))
    rows, errors = [], []
    header = next(reader, None)
    if header is None or [h.strip() for h in header[: len(CSV_COLUMNS)]] != list(CSV_COLUMNS):
        return [], [RowError(1, "1行目の見出しは " + ",".join(CSV_COLUMNS) + " にしてください。")]
    municipalities = {m.code: m for m in Municipality.objects.all()}
    seen: set[str] = set()
    for values in reader:
        line = reader.line_num
        if not any(v.strip() for v in values):
            continue
        values = [v.strip() for v in values] + [""] * (len(CSV_COLUMNS) - len(values))
        username, display_name, role_word, codes, email = values[: len(CSV_COLUMNS)]
        if not username:
            errors.append(RowError(line, "利用者名がありません。"))
            continue
        if username.lower() in seen:
            errors.append(RowError(line, f"利用者名 {username} がファイル内で重複しています。"))
            continue
        seen.add(username.lower())
        role = ROLE_WORDS.get(role_word)
        if role is None:
            errors.append(RowError(line, f"役割「{role_word}」は使えません。"))
            continue
        chosen, missing = [], []
        for code in (c for c in codes.replace("・", " ").replace(";", " ").split() if c):
            (chosen if code in municipalities else missing).append(municipalities.get(code, code))
        if missing:
            errors.append(RowError(line, f"団体コード {'・'.join(missing)} の自治体がありません。"))
            continue
        rows.append(
            (line, NewStaff(username, display_name, role, chosen, email=email))  # type: ignore[arg-type]
        )
    return rows, errors


def _messages(exc: ValidationError) -> str:
    return " ".join(exc.messages)


@transaction.atomic
def staff_bulk_create(
    *, actor: User, data: bytes, request: HttpRequest | None = None
) -> list[CreatedStaff]:
    """Create every account of the CSV, or none: any bad row refuses the whole file, each bad
    row reported with its line and reason."""
    _require_admin(actor)
    rows, errors = _parse_rows(decode_csv(data))
    created: list[CreatedStaff] = []
    for line, new in rows:
        try:
            with transaction.atomic():
                created.append(_staff_create(actor=actor, new=new, request=request))
        except ValidationError as exc:
            errors.append(RowError(line, _messages(exc)))
        except IntegrityError:
            errors.append(RowError(line, "この利用者名はすでに使われています。"))
    if errors:
        transaction.set_rollback(True)
        raise BulkRefused(sorted(errors, key=lambda e: e.line))
    if not created:
        transaction.set_rollback(True)
        raise BulkRefused([RowError(2, "登録する行がありません。")])
    _audit(actor, request, "staff.bulk_create", count=len(created))
    return created


# --- Every user's own account -----------------------------------------------------------------


@transaction.atomic
def own_password_change(
    *, user: User, old_password: str, new_password: str, request: HttpRequest
) -> None:
    """Django's validators apply; the user's other sessions end (this one stays signed in)."""
    if not user.check_password(old_password):
        raise ValidationError({"old_password": "現在のパスワードが正しくありません。"})
    password_validation.validate_password(new_password, user)
    user.set_password(new_password)
    user.save(update_fields=["password"])
    update_session_auth_hash(request, user)  # this session stays signed in
    user_sessions_end(user_id=user.pk, keep_session_key=request.session.session_key)
    audit_record(action=AuditLog.Action.PASSWORD_CHANGED, request=request, user=user)


@transaction.atomic
def own_logout_everywhere(*, user: User, request: HttpRequest) -> int:
    """End every session of the user, this one too, and close their sockets."""
    audit_record(action=AuditLog.Action.LOGOUT_EVERYWHERE, request=request, user=user)
    return user_sessions_end(user_id=user.pk)
