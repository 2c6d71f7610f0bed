"""Events on ecom.customers.v1, produced by customer-service.

Ids and business facts only: a consumer that needs a customer's contact data asks customer-service's
API with its own token (and the `customers:pii` scope).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from contracts import topics
from contracts.registry import EventData, register

ConsentPurpose = Literal["email_marketing", "sms", "personalisation", "analytics", "third_party_sharing"]
ConsentStatus = Literal["granted", "withdrawn"]


@register(
    "ecom.customer.created.v1",
    topic=topics.CUSTOMERS,
    producer="customer-service",
    description="A customer profile was created.",
)
class CustomerCreated(EventData):
    customer_id: str = Field(description="The new customer's id")
    country: str | None = Field(default=None, description="ISO 3166-1 alpha-2 country code")


@register(
    "ecom.customer.updated.v1",
    topic=topics.CUSTOMERS,
    producer="customer-service",
    description="A customer profile changed; `changed` names the fields, never their values.",
)
class CustomerUpdated(EventData):
    customer_id: str
    version: int = Field(description="The profile's version after the change")
    changed: list[str] = Field(description="Names of the fields that changed, e.g. contact, tags")
    country: str | None = None
    tags: list[str] = Field(default_factory=list)


@register(
    "ecom.customer.merged.v1",
    topic=topics.CUSTOMERS,
    producer="customer-service",
    description=(
        "Customer profiles were merged into one survivor. Every service re-points data held under "
        "`merged_customer_ids` to `survivor_customer_id`."
    ),
)
class CustomerMerged(EventData):
    merge_id: str
    survivor_customer_id: str
    merged_customer_ids: list[str] = Field(min_length=1)
    automatic: bool = Field(description="True when the duplicate score passed the auto-merge threshold")
    score: float | None = Field(default=None, description="Duplicate score that led to the merge")
    merged_at: datetime


@register(
    "ecom.customer.unmerged.v1",
    topic=topics.CUSTOMERS,
    producer="customer-service",
    description=(
        "A merge was undone: `restored_customer_ids` are active profiles again and own what they "
        "owned before the merge."
    ),
)
class CustomerUnmerged(EventData):
    merge_id: str
    survivor_customer_id: str
    restored_customer_ids: list[str] = Field(min_length=1)
    unmerged_at: datetime


@register(
    "ecom.customer.consent_changed.v1",
    topic=topics.CUSTOMERS,
    producer="customer-service",
    description="A customer granted or withdrew consent for a purpose; act on it (e.g. stop emailing).",
)
class CustomerConsentChanged(EventData):
    customer_id: str
    purpose: ConsentPurpose
    status: ConsentStatus
    previous_status: ConsentStatus | None = None
    source: str = Field(description="Where the decision was recorded, e.g. checkout, preference_center")
    lawful_basis: str = Field(description="GDPR Art. 6 basis, e.g. consent, legitimate_interest")
    changed_at: datetime


@register(
    "ecom.customer.flagged.v1",
    topic=topics.CUSTOMERS,
    producer="customer-service",
    description="A risk rule flagged a customer (and possibly one of its orders).",
)
class CustomerFlagged(EventData):
    flag_id: str
    customer_id: str
    rule: str = Field(description="The rule's name, e.g. order_velocity")
    reason: str = Field(description="Why the rule fired, in words (no personal data)")
    order_id: str | None = None
    flagged_at: datetime
