"""API shapes for tickets, donors, donations, shipments and the personal-data access log.

Input serializers only parse; writes happen in tickets.services. Related-record fields accept
only rows the requesting user may see, so an id from another municipality is "not found".
"""

from __future__ import annotations

from typing import Any

from helpdesk.models import FollowUp
from rest_framework import serializers

from crm.models import Donor, Municipality, PersonalDataAccess, Provider, User
from donations_sync.models import Donation, Shipment
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


class DonorSerializer(serializers.ModelSerializer):
    phones = serializers.SlugRelatedField(slug_field="e164", many=True, read_only=True)
    emails = serializers.SlugRelatedField(slug_field="address", many=True, read_only=True)

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
            "phones",
            "emails",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class DonationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Donation
        fields = [
            "id",
            "municipality",
            "donor",
            "portal",
            "portal_order_number",
            "external_id",
            "donated_at",
            "paid_on",
            "amount",
            "payment_method",
            "one_stop_requested",
            "one_stop_received_on",
            "receipt_issued_on",
            "gift_declined",
            "status",
            "note",
            "updated_at",
        ]
        read_only_fields = fields


class ShipmentSerializer(serializers.ModelSerializer):
    gift_item_name = serializers.CharField(source="gift_item.name")
    carrier = serializers.SlugRelatedField(slug_field="code", read_only=True)
    tracking_url = serializers.SerializerMethodField()

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
            "shipped_on",
            "delivered_on",
            "status",
            "replaces",
            "updated_at",
        ]
        read_only_fields = fields

    def get_tracking_url(self, shipment: Shipment) -> str | None:
        if shipment.carrier_id and shipment.tracking_number:
            return shipment.carrier.tracking_url(shipment.tracking_number)
        return None


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
