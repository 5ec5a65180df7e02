"""API shapes for tickets, donors, donations, shipments and the personal-data access log.

Input serializers only parse; writes happen in tickets.services. Related-record fields accept
only rows the requesting user may see, so an id from another municipality is "not found".
"""

from __future__ import annotations

from typing import Any

from helpdesk.models import FollowUp
from rest_framework import serializers

from crm.models import Donor, Municipality, PersonalDataAccess, Provider, User
from crm.presenters import DonorView, present_donor
from donations_sync.models import Donation, Shipment
from donations_sync.presenters import (
    DonationView,
    ShipmentView,
    present_donation,
    present_shipment,
)
from knowledge.render import unfilled_message, unfilled_variables
from tickets.models import Category, Channel, Inquiry, RequesterType, Severity, Status


class ScopedPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """A primary key that must name a row the requesting user may see."""

    def get_queryset(self):
        return super().get_queryset().visible_to(self.context["request"].user)


# --- tickets ------------------------------------------------------------------------------


class TicketChangeSerializer(serializers.Serializer):
    field = serializers.CharField()
    old_value = serializers.CharField(allow_null=True)
    new_value = serializers.CharField(allow_null=True)


class FollowUpSerializer(serializers.ModelSerializer):
    kind = serializers.CharField(source="event.kind")
    kind_label = serializers.CharField(source="event.get_kind_display")
    operator_only = serializers.BooleanField(source="event.operator_only")
    channel = serializers.CharField(source="event.channel")
    sender = serializers.CharField(source="event.sender")
    user = serializers.SerializerMethodField()
    changes = TicketChangeSerializer(many=True, source="ticketchange_set")

    class Meta:
        model = FollowUp
        fields = [
            "id",
            "date",
            "kind",
            "kind_label",
            "title",
            "comment",
            "public",
            "operator_only",
            "channel",
            "sender",
            "user",
            "changes",
        ]

    def get_user(self, followup: FollowUp) -> str | None:
        return str(followup.user) if followup.user_id else None


class InquirySerializer(serializers.ModelSerializer):
    id = serializers.IntegerField(source="pk", read_only=True)
    title = serializers.CharField(source="ticket.title")
    municipality_name = serializers.CharField(source="municipality.name")
    status_label = serializers.CharField(source="get_status_display")
    category = serializers.SlugRelatedField(slug_field="code", read_only=True)
    category_name = serializers.CharField(source="category.name", default=None)
    assigned_to = serializers.IntegerField(source="ticket.assigned_to_id", allow_null=True)
    assigned_to_name = serializers.SerializerMethodField()
    donations = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    shipments = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = Inquiry
        fields = [
            "id",
            "title",
            "municipality",
            "municipality_name",
            "channel",
            "requester_type",
            "requester_name",
            "category",
            "category_name",
            "severity",
            "status",
            "status_label",
            "assigned_to",
            "assigned_to_name",
            "created_at",
            "last_activity_at",
            "first_response_at",
            "resolved_at",
            "donor",
            "donations",
            "shipments",
            "provider",
        ]
        read_only_fields = fields

    def get_assigned_to_name(self, inquiry: Inquiry) -> str | None:
        user = inquiry.ticket.assigned_to
        return str(user) if user else None


class InquiryDetailSerializer(InquirySerializer):
    description = serializers.CharField(source="ticket.description")
    followups = serializers.SerializerMethodField()

    class Meta(InquirySerializer.Meta):
        fields = [*InquirySerializer.Meta.fields, "description", "followups"]
        read_only_fields = fields

    def get_followups(self, inquiry: Inquiry) -> list[dict[str, Any]]:
        followups = inquiry.followups_visible_to(self.context["request"].user).prefetch_related(
            "ticketchange_set"
        )
        return FollowUpSerializer(followups, many=True).data


class InquiryCreateSerializer(serializers.Serializer):
    municipality = ScopedPrimaryKeyRelatedField(queryset=Municipality.objects.all())
    channel = serializers.ChoiceField(choices=Channel.choices)
    title = serializers.CharField(max_length=200)
    description = serializers.CharField(allow_blank=True, default="")
    requester_type = serializers.ChoiceField(
        choices=RequesterType.choices, default=RequesterType.DONOR
    )
    category = serializers.SlugRelatedField(
        slug_field="code", queryset=Category.objects.filter(active=True), required=False
    )
    severity = serializers.ChoiceField(choices=Severity.choices, default=Severity.NORMAL)
    donor = ScopedPrimaryKeyRelatedField(queryset=Donor.objects.all(), required=False)
    donations = ScopedPrimaryKeyRelatedField(
        queryset=Donation.objects.all(), many=True, required=False
    )
    shipments = ScopedPrimaryKeyRelatedField(
        queryset=Shipment.objects.all(), many=True, required=False
    )
    provider = ScopedPrimaryKeyRelatedField(queryset=Provider.objects.all(), required=False)
    submitter_email = serializers.EmailField(required=False, default="")
    requester_name = serializers.CharField(
        max_length=200, required=False, default="", allow_blank=True
    )


class BodySerializer(serializers.Serializer):
    body = serializers.CharField()

    def validate_body(self, body: str) -> str:
        # The page's reply box refuses the same: a 定型文 placeholder must not reach the requester.
        names = unfilled_variables(body)
        if names:
            raise serializers.ValidationError(unfilled_message(names))
        return body


class NoteSerializer(BodySerializer):
    operator_only = serializers.BooleanField(default=True)
    title = serializers.CharField(max_length=200, required=False, default="")


class StatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Status.choices)
    comment = serializers.CharField(required=False, default="", allow_blank=True)


class CategorySerializer(serializers.Serializer):
    category = serializers.SlugRelatedField(
        slug_field="code", queryset=Category.objects.filter(active=True), allow_null=True
    )


class SeveritySerializer(serializers.Serializer):
    severity = serializers.ChoiceField(choices=Severity.choices)


class AssignSerializer(serializers.Serializer):
    assignee = serializers.PrimaryKeyRelatedField(
        queryset=User.objects.filter(is_active=True), allow_null=True
    )


class LinkSerializer(serializers.Serializer):
    donor = ScopedPrimaryKeyRelatedField(queryset=Donor.objects.all(), required=False)
    donations = ScopedPrimaryKeyRelatedField(
        queryset=Donation.objects.all(), many=True, required=False
    )
    shipments = ScopedPrimaryKeyRelatedField(
        queryset=Shipment.objects.all(), many=True, required=False
    )
    provider = ScopedPrimaryKeyRelatedField(queryset=Provider.objects.all(), required=False)


class MergeSerializer(serializers.Serializer):
    into = ScopedPrimaryKeyRelatedField(queryset=Inquiry.objects.all())


class CategoryListSerializer(serializers.ModelSerializer):
    class Meta:
        model = Category
        fields = ["code", "name", "sort_order"]


# --- donors, donations, shipments (read-only) ---------------------------------------------


# Each record also carries the words the screens show (state, flags), from the same presenters
# as the screen pop and the donor page.


def _presented(obj: Any, present: Any) -> Any:
    view = getattr(obj, "_presented", None)
    if view is None:
        view = obj._presented = present(obj)
    return view


class DonorSerializer(serializers.ModelSerializer):
    phones = serializers.SlugRelatedField(slug_field="e164", many=True, read_only=True)
    emails = serializers.SlugRelatedField(slug_field="address", many=True, read_only=True)
    full_address = serializers.SerializerMethodField()
    flags = serializers.SerializerMethodField()

    class Meta:
        model = Donor
        fields = [
            "id",
            "municipality",
            "donor_number",
            "name",
            "name_kana",
            "postal_code",
            "prefecture",
            "address",
            "building",
            "is_resident",
            "returned_mail",
            "do_not_contact",
            "note",
            "full_address",
            "flags",
            "phones",
            "emails",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def _view(self, donor: Donor) -> DonorView:
        return _presented(donor, present_donor)

    def get_full_address(self, donor: Donor) -> str:
        return self._view(donor).full_address

    def get_flags(self, donor: Donor) -> list[str]:
        return [str(f) for f in self._view(donor).flags]


class DonationSerializer(serializers.ModelSerializer):
    portal_label = serializers.SerializerMethodField()
    payment_method_label = serializers.SerializerMethodField()
    status_label = serializers.SerializerMethodField()
    state = serializers.SerializerMethodField()
    flags = serializers.SerializerMethodField()

    class Meta:
        model = Donation
        fields = [
            "id",
            "municipality",
            "donor",
            "portal",
            "portal_label",
            "portal_order_number",
            "external_id",
            "donated_at",
            "paid_on",
            "amount",
            "payment_method",
            "payment_method_label",
            "one_stop_requested",
            "one_stop_received_on",
            "receipt_issued_on",
            "gift_declined",
            "status",
            "status_label",
            "state",
            "flags",
            "note",
            "updated_at",
        ]
        read_only_fields = fields

    def _view(self, donation: Donation) -> DonationView:
        return _presented(donation, present_donation)

    def get_portal_label(self, donation: Donation) -> str:
        return self._view(donation).portal_label

    def get_payment_method_label(self, donation: Donation) -> str:
        return self._view(donation).payment_method_label

    def get_status_label(self, donation: Donation) -> str:
        return self._view(donation).status_label

    def get_state(self, donation: Donation) -> str:
        return self._view(donation).state

    def get_flags(self, donation: Donation) -> list[str]:
        return [str(f) for f in self._view(donation).flags]


class ShipmentSerializer(serializers.ModelSerializer):
    gift_item_name = serializers.CharField(source="gift_item.name")
    carrier = serializers.SlugRelatedField(slug_field="code", read_only=True)
    tracking_url = serializers.SerializerMethodField()
    tracking_warning = serializers.SerializerMethodField()
    status_label = serializers.SerializerMethodField()
    subscription = serializers.SerializerMethodField()
    state = serializers.SerializerMethodField()

    class Meta:
        model = Shipment
        fields = [
            "id",
            "municipality",
            "donation",
            "gift_item",
            "gift_item_name",
            "delivery_number",
            "ship_to_name",
            "ship_to_kana",
            "ship_to_postal_code",
            "ship_to_address",
            "ship_to_phone",
            "desired_date",
            "desired_time_slot",
            "carrier",
            "tracking_number",
            "tracking_url",
            "tracking_valid",
            "tracking_warning",
            "shipped_on",
            "delivered_on",
            "status",
            "status_label",
            "subscription",
            "state",
            "replaces",
            "updated_at",
        ]
        read_only_fields = fields

    def _view(self, shipment: Shipment) -> ShipmentView:
        return _presented(shipment, present_shipment)

    def get_tracking_url(self, shipment: Shipment) -> str | None:
        return self._view(shipment).tracking_url or None

    def get_tracking_warning(self, shipment: Shipment) -> str:
        return self._view(shipment).tracking_warning

    def get_status_label(self, shipment: Shipment) -> str:
        return self._view(shipment).status_label

    def get_subscription(self, shipment: Shipment) -> str:
        return self._view(shipment).subscription

    def get_state(self, shipment: Shipment) -> str:
        return self._view(shipment).state


# --- personal-data access log -------------------------------------------------------------


class PersonalDataAccessSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username")
    action_label = serializers.CharField(source="get_action_display")

    class Meta:
        model = PersonalDataAccess
        fields = [
            "id",
            "at",
            "user",
            "username",
            "municipality",
            "action",
            "action_label",
            "record_type",
            "record_id",
            "path",
            "ip_address",
            "detail",
        ]
        read_only_fields = fields
