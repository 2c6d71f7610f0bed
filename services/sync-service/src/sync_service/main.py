"""Sync service: wiring only."""

from __future__ import annotations

from fastapi import FastAPI

from servicekit.app import create_service_app
from servicekit.routes import whoami_router
from sync_service.channels.router import router as channels_router
from sync_service.config import Settings
from sync_service.events import CONSUMERS
from sync_service.listings.router import router as listings_router
from sync_service.metrics import SYNC_METRICS
from sync_service.push.router import router as push_router
from sync_service.push.router import start_pipeline, stop_pipeline


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(
        settings or Settings(),
        title="Sync service",
        description=(
            "Sales-channel synchronisation: the channel registry (web stores, marketplaces, "
            "physical stores' POS, product feeds) and each channel's listings, computed from "
            "product-service's events and pushed to webhook and POS channels (signed, retried, per-channel "
            "queues and circuit breakers), with failed deliveries listed and replayable."
        ),
        routers=[whoami_router(), channels_router, listings_router, push_router],
        consumers=CONSUMERS,
        on_startup=[start_pipeline],
        on_shutdown=[stop_pipeline],
        business_metrics=SYNC_METRICS,
    )


app = create_app()
