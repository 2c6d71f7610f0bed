"""Sync service: wiring only."""

from __future__ import annotations

from fastapi import FastAPI

from servicekit.app import create_service_app
from servicekit.routes import whoami_router
from sync_service.channels.router import router as channels_router
from sync_service.config import Settings
from sync_service.events import CONSUMERS
from sync_service.listings.router import router as listings_router


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(
        settings or Settings(),
        title="Sync service",
        description=(
            "Sales-channel synchronisation: the channel registry (web stores, marketplaces, "
            "physical stores' POS, product feeds) and each channel's listings, computed from "
            "product-service's events."
        ),
        routers=[whoami_router(), channels_router, listings_router],
        consumers=CONSUMERS,
    )


app = create_app()
