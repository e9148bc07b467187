"""What tracking learns: customers, touchpoints and conversions.

A touchpoint belongs to one enrollment (the partner that made it happen). Visitors (the
first-party cookie) and customers (the merchant's own id) tie touchpoints to the conversions
they led to. Money is integer minor units in the conversion's currency.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.models import Model

from domain.clock import epoch_us
from domain.programs.models import FunnelRole

if TYPE_CHECKING:
    from domain.partners.models import Enrollment
    from domain.programs.models import Program


class TouchpointKind(StrEnum):
    CLICK = "CLICK"
    CODE = "CODE"
    LEAD = "LEAD"
    DEAL = "DEAL"
    WEBINAR = "WEBINAR"
    MEETING = "MEETING"
    CUSTOM = "CUSTOM"


class ConversionKind(StrEnum):
    LEAD = "LEAD"
    SIGNUP = "SIGNUP"
    SALE = "SALE"
    RENEWAL = "RENEWAL"


class ConversionStatus(StrEnum):
    CONFIRMED = "CONFIRMED"
    PARTIALLY_REFUNDED = "PARTIALLY_REFUNDED"
    REFUNDED = "REFUNDED"


class Customer(Model):
    """The merchant's customer, by the merchant's own id, remembering who referred it first."""

    id = fields.IntField(primary_key=True)
    program: fields.ForeignKeyRelation[Program] = fields.ForeignKeyField(
        "partnergraph.Program", related_name="customers", on_delete=fields.CASCADE
    )
    program_id: int
    external_id = fields.CharField(max_length=200)
    email = fields.CharField(max_length=254, null=True)  # stored lower-case
    first_enrollment: fields.ForeignKeyNullableRelation[Enrollment] = fields.ForeignKeyField(
        "partnergraph.Enrollment", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    first_enrollment_id: int | None
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "customers"
        unique_together = (("program", "external_id"),)


class ReferralLink(Model):
    """A partner's shareable link: `/r/{code}` redirects to its destination with UTM defaults."""

    id = fields.IntField(primary_key=True)
    program: fields.ForeignKeyRelation[Program] = fields.ForeignKeyField(
        "partnergraph.Program", related_name=False, on_delete=fields.CASCADE
    )
    program_id: int
    enrollment: fields.ForeignKeyRelation[Enrollment] = fields.ForeignKeyField(
        "partnergraph.Enrollment", related_name="links", on_delete=fields.CASCADE
    )
    enrollment_id: int
    code = fields.CharField(max_length=64)
    # lower-case copy: link codes are unique case-insensitively, on every database
    code_key = fields.CharField(max_length=64, unique=True)
    destination_url = fields.CharField(max_length=2048, null=True)  # None: the program's
    utm_source = fields.CharField(max_length=200, null=True)
    utm_medium = fields.CharField(max_length=200, null=True)
    utm_campaign = fields.CharField(max_length=200, null=True)
    disabled = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "referral_links"
        indexes = (("enrollment_id", "id"),)


class VisitorCustomer(Model):
    """Identity stitching: a visitor (cookie) is this customer, so its clicks, before and after,
    belong to the customer's journey."""

    id = fields.IntField(primary_key=True)
    program: fields.ForeignKeyRelation[Program] = fields.ForeignKeyField(
        "partnergraph.Program", related_name=False, on_delete=fields.CASCADE
    )
    program_id: int
    visitor_id = fields.CharField(max_length=64)
    customer: fields.ForeignKeyRelation[Customer] = fields.ForeignKeyField(
        "partnergraph.Customer", related_name="visitors", on_delete=fields.CASCADE
    )
    customer_id: int
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "visitor_customers"
        unique_together = (("program", "visitor_id"),)


class Touchpoint(Model):
    """One contact between a partner and a (future) customer: a click, a code, a lead, a deal.

    `excluded` touchpoints (flagged, self-referral) are kept for the record and never credited.
    """

    id = fields.BigIntField(primary_key=True)
    program: fields.ForeignKeyRelation[Program] = fields.ForeignKeyField(
        "partnergraph.Program", related_name=False, on_delete=fields.CASCADE
    )
    program_id: int
    enrollment: fields.ForeignKeyRelation[Enrollment] = fields.ForeignKeyField(
        "partnergraph.Enrollment", related_name="touchpoints", on_delete=fields.CASCADE
    )
    enrollment_id: int
    kind = fields.CharEnumField(TouchpointKind, max_length=16)
    role = fields.CharEnumField(FunnelRole, max_length=16, null=True)
    occurred_at = fields.DatetimeField()
    # occurred_at in microseconds since the epoch, kept by save(): bulk reads and aggregates
    # compute with it (no date parsing per row, the same integer on every database). Code that
    # writes touchpoints without save() (bulk inserts) sets it with `epoch_us`.
    occurred_us = fields.BigIntField()
    customer: fields.ForeignKeyNullableRelation[Customer] = fields.ForeignKeyField(
        "partnergraph.Customer", related_name="touchpoints", null=True, on_delete=fields.SET_NULL
    )
    customer_id: int | None
    visitor_id = fields.CharField(max_length=64, null=True)
    click_id = fields.CharField(max_length=64, null=True, unique=True)
    external_id = fields.CharField(max_length=200, null=True)
    excluded = fields.BooleanField(default=False)
    # why it is excluded: SELF_REFERRAL, FLAGGED, ... (None when it counts)
    exclusion_reason = fields.CharField(max_length=32, null=True)
    # the click path's facts (CLICK touchpoints): never the raw IP
    link: fields.ForeignKeyNullableRelation[ReferralLink] = fields.ForeignKeyField(
        "partnergraph.ReferralLink", related_name="clicks", null=True, on_delete=fields.SET_NULL
    )
    link_id: int | None
    utm_source = fields.CharField(max_length=200, null=True)
    utm_medium = fields.CharField(max_length=200, null=True)
    utm_campaign = fields.CharField(max_length=200, null=True)
    referrer = fields.CharField(max_length=512, null=True)
    ip_hash = fields.CharField(max_length=64, null=True)  # salted SHA-256, hex
    ua_class = fields.CharField(max_length=16, null=True)  # DESKTOP, MOBILE, TABLET, OTHER
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "touchpoints"
        unique_together = (("program", "external_id"),)
        # Journeys are found by customer, by (program, visitor) and by click. The first two
        # cover what attribution reads, so a million-touchpoint preview never visits the table.
        indexes = (
            ("customer_id", "occurred_us", "enrollment_id", "kind", "role", "excluded"),
            (
                "program_id",
                "visitor_id",
                "occurred_us",
                "enrollment_id",
                "kind",
                "role",
                "excluded",
            ),
            ("program_id", "occurred_us"),
            ("link_id", "kind", "excluded"),  # a link's click count
        )

    async def save(
        self,
        using_db: BaseDBAsyncClient | None = None,
        update_fields: Iterable[str] | None = None,
        force_create: bool = False,
        force_update: bool = False,
    ) -> None:
        self.occurred_us = epoch_us(self.occurred_at)
        if update_fields is not None and "occurred_at" in update_fields:
            update_fields = [*update_fields, "occurred_us"]
        await super().save(using_db, update_fields, force_create, force_update)


class Conversion(Model):
    """A lead, signup, sale or renewal the merchant reported, once per `external_id`."""

    id = fields.BigIntField(primary_key=True)
    program: fields.ForeignKeyRelation[Program] = fields.ForeignKeyField(
        "partnergraph.Program", related_name="conversions", on_delete=fields.CASCADE
    )
    program_id: int
    external_id = fields.CharField(max_length=200)
    kind = fields.CharEnumField(ConversionKind, max_length=16)
    amount_minor = fields.BigIntField()
    refunded_minor = fields.BigIntField(default=0)
    currency = fields.CharField(max_length=3)
    occurred_at = fields.DatetimeField()
    status = fields.CharEnumField(
        ConversionStatus, max_length=24, default=ConversionStatus.CONFIRMED
    )
    customer: fields.ForeignKeyNullableRelation[Customer] = fields.ForeignKeyField(
        "partnergraph.Customer", related_name="conversions", null=True, on_delete=fields.SET_NULL
    )
    customer_id: int | None
    # what the conversion named besides its customer: the journey includes their touchpoints
    visitor_id = fields.CharField(max_length=64, null=True)
    click_id = fields.CharField(max_length=64, null=True)
    code_touchpoint: fields.ForeignKeyNullableRelation[Touchpoint] = fields.ForeignKeyField(
        "partnergraph.Touchpoint", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    code_touchpoint_id: int | None
    # False for the conversion pixel's (spoofable) until an admin or an app confirms them
    verified = fields.BooleanField(default=True)
    # SHA-256 of the accepted input: the same externalId again with another input is a CONFLICT
    fingerprint = fields.CharField(max_length=64, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "conversions"
        unique_together = (("program", "external_id"),)
        indexes = (("program_id", "occurred_at"), ("customer_id", "kind", "occurred_at"))


class Refund(Model):
    """One refund of a conversion (full or partial), kept so the commission ledger can reverse
    it; a conversion's `refunded_minor` is the sum of its refunds."""

    id = fields.BigIntField(primary_key=True)
    conversion: fields.ForeignKeyRelation[Conversion] = fields.ForeignKeyField(
        "partnergraph.Conversion", related_name="refunds", on_delete=fields.CASCADE
    )
    conversion_id: int
    amount_minor = fields.BigIntField()
    currency = fields.CharField(max_length=3)
    applied = fields.BooleanField(default=False)  # reversed in the commission ledger
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "refunds"


class DealStatus(StrEnum):
    PENDING = "PENDING"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"


class Deal(Model):
    """A prospect a partner registered. The first approved registration owns the prospect for
    the program's protection period and becomes a DEAL touchpoint of the registering partner."""

    id = fields.IntField(primary_key=True)
    program: fields.ForeignKeyRelation[Program] = fields.ForeignKeyField(
        "partnergraph.Program", related_name=False, on_delete=fields.CASCADE
    )
    program_id: int
    enrollment: fields.ForeignKeyRelation[Enrollment] = fields.ForeignKeyField(
        "partnergraph.Enrollment", related_name="deals", on_delete=fields.CASCADE
    )
    enrollment_id: int
    company_name = fields.CharField(max_length=200)
    company_key = fields.CharField(max_length=200)  # normalized: case, spaces, punctuation
    customer_external_id = fields.CharField(max_length=200, null=True)
    contact_email = fields.CharField(max_length=254, null=True)
    amount_minor = fields.BigIntField(null=True)
    currency = fields.CharField(max_length=3)
    status = fields.CharEnumField(DealStatus, max_length=16, default=DealStatus.PENDING)
    reason = fields.CharField(max_length=500, null=True)
    decided_at = fields.DatetimeField(null=True)
    protected_until = fields.DatetimeField(null=True)
    touchpoint: fields.ForeignKeyNullableRelation[Touchpoint] = fields.ForeignKeyField(
        "partnergraph.Touchpoint", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    touchpoint_id: int | None
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "deals"
        indexes = (("program_id", "company_key"), ("enrollment_id", "id"))
