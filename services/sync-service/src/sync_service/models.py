"""Tables of sync-service; the platform's outbox and inbox come from servicekit."""

from __future__ import annotations

from servicekit.events import models as platform_models
from sync_service.channels import models as channel_models
from sync_service.drift import models as drift_models
from sync_service.inbound import models as inbound_models
from sync_service.listings import models as listing_models
from sync_service.logistics import models as logistics_models
from sync_service.orders import models as order_models
from sync_service.push import models as push_models
from sync_service.sales import models as sales_models
from sync_service.shipments import models as shipment_models

__all__ = [
    "channel_models",
    "drift_models",
    "inbound_models",
    "listing_models",
    "logistics_models",
    "order_models",
    "platform_models",
    "push_models",
    "sales_models",
    "shipment_models",
]
