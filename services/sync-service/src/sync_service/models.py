"""Tables of sync-service; the platform's outbox and inbox come from servicekit."""

from __future__ import annotations

from servicekit.events import models as platform_models
from sync_service.inbound import models as inbound_models
from sync_service.logistics import models as logistics_models
from sync_service.orders import models as order_models
from sync_service.shipments import models as shipment_models

__all__ = ["inbound_models", "logistics_models", "order_models", "platform_models", "shipment_models"]
