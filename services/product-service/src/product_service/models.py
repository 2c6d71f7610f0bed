"""Tables of product-service; the platform's outbox and inbox come from servicekit."""

from __future__ import annotations

from product_service.catalog import models as catalog_models
from product_service.channels import models as channel_models
from product_service.inventory import models as inventory_models
from product_service.pricing import models as pricing_models
from product_service.suppliers import models as supplier_models
from product_service.transfer import models as transfer_models
from servicekit.events import models as platform_models

__all__ = [
    "catalog_models",
    "channel_models",
    "inventory_models",
    "platform_models",
    "pricing_models",
    "supplier_models",
    "transfer_models",
]
