"""Tables of customer-service; the platform's outbox and inbox come from servicekit."""

from __future__ import annotations

from customer_service.consent.models import ConsentRecord
from customer_service.customers.models import (
    BlockingKey,
    Customer,
    CustomerConsentState,
    CustomerIdentifier,
    CustomerTag,
    PiiRead,
)
from customer_service.duplicates.models import DuplicateCandidate, DuplicateJob, LinkageModelRecord, Merge
from customer_service.imports.models import ImportJob, ImportRow
from customer_service.orders.models import Order, OrderStatusChange
from customer_service.risk.models import RiskFlag
from servicekit.events import models as platform_models

__all__ = [
    "BlockingKey",
    "ConsentRecord",
    "Customer",
    "CustomerConsentState",
    "CustomerIdentifier",
    "CustomerTag",
    "DuplicateCandidate",
    "DuplicateJob",
    "ImportJob",
    "ImportRow",
    "LinkageModelRecord",
    "Merge",
    "Order",
    "OrderStatusChange",
    "PiiRead",
    "RiskFlag",
    "platform_models",
]
