"""Sync service: wiring only."""

from __future__ import annotations

from fastapi import FastAPI

from servicekit.app import create_service_app
from servicekit.routes import whoami_router
from sync_service.config import Settings
from sync_service.events import CONSUMERS
from sync_service.inbound.router import router as inbound_router
from sync_service.logistics.router import router as logistics_router
from sync_service.secretbox import SecretBox
from sync_service.shipments.router import router as shipments_router
from sync_service.shipments.sweep import start_late_sweep
from sync_service.webhooks import RejectionCounter, authenticate


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    app = create_service_app(
        settings,
        title="Sync service",
        description=(
            "Sales-channel synchronisation and the partners' data coming in: logistics partners' "
            "shipment webhooks (Standard Webhooks signatures) and order tracking; suppliers' inbound "
            "deliveries."
        ),
        routers=[whoami_router(), logistics_router, shipments_router, inbound_router],
        consumers=CONSUMERS,
        on_startup=[start_late_sweep],
        authenticate=authenticate,
    )
    app.add_middleware(RejectionCounter)
    app.state.secret_box = SecretBox(settings.secret_keys.get_secret_value())
    return app


app = create_app()
