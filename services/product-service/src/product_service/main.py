"""Product service: wiring only."""

from __future__ import annotations

from fastapi import FastAPI

from product_service.catalog.router import router as catalog_router
from product_service.channel_facts.router import router as channel_facts_router
from product_service.config import Settings
from product_service.events import CONSUMERS
from product_service.inventory.reservations import start_expiry_sweeper
from product_service.inventory.router import router as inventory_router
from product_service.metrics import PRODUCT_METRICS
from product_service.pricing.promotions import start_scheduler
from product_service.pricing.router import promotions_router
from product_service.pricing.router import router as pricing_router
from product_service.quality.router import router as quality_router
from product_service.suppliers.router import router as suppliers_router
from product_service.transfer.router import router as transfer_router
from product_service.transfer.router import stop_imports
from servicekit.app import create_service_app
from servicekit.routes import whoami_router


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(
        settings or Settings(),
        title="Product service",
        description=(
            "Product data management: catalog, typed attributes, prices and history, "
            "promotions, stock per location, suppliers, import, data quality."
        ),
        routers=[
            whoami_router(),
            catalog_router,
            channel_facts_router,
            inventory_router,
            pricing_router,
            promotions_router,
            transfer_router,
            suppliers_router,
            quality_router,
        ],
        on_startup=[start_scheduler, start_expiry_sweeper],
        on_shutdown=[stop_imports],
        consumers=CONSUMERS,
        business_metrics=PRODUCT_METRICS,
    )


app = create_app()
