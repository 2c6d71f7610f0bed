"""Analytics service: wiring only."""

from __future__ import annotations

from fastapi import FastAPI

from analytics_service.clv.router import router as clv_router
from analytics_service.clv.service import StoredPredictedClv
from analytics_service.config import Settings
from analytics_service.dashboard.router import PUBLIC_ASSET_PATHS
from analytics_service.dashboard.router import router as dashboard_router
from analytics_service.events import consumers
from analytics_service.fitting.router import router as models_router
from analytics_service.fitting.service import refit_on_schedule, stop_schedule
from analytics_service.forecasting.router import router as forecasting_router
from analytics_service.insights.router import router as insights_router
from analytics_service.kpis.hooks import register_predicted_clv
from analytics_service.kpis.router import router as kpis_router
from analytics_service.metrics import ANALYTICS_METRICS
from analytics_service.recommendations.router import router as recommendations_router
from analytics_service.segments.router import router as segments_router
from analytics_service.spend.router import router as spend_router
from analytics_service.tracking.router import router as tracking_router
from servicekit.app import create_service_app
from servicekit.authgate import public_paths
from servicekit.routes import whoami_router

TRACK_PATH = "/v1/track"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    register_predicted_clv(StoredPredictedClv())
    app = create_service_app(
        settings,
        title="Analytics service",
        description=(
            "Analytics: storefront event tracking (Segment e-commerce spec), rollups of sessions, funnels, "
            "orders, revenue and costs, KPIs with their change against the previous period, funnels, "
            "retention cohorts and RFM / rule segments; demand forecasts with days of cover and reorder "
            "suggestions, bought-together and personal recommendations, predicted customer lifetime value, "
            "refitted on a schedule."
        ),
        routers=[
            whoami_router(),
            tracking_router,
            kpis_router,
            insights_router,
            segments_router,
            spend_router,
            forecasting_router,
            recommendations_router,
            clv_router,
            models_router,
            dashboard_router,
        ],
        consumers=consumers(settings),
        business_metrics=ANALYTICS_METRICS,
        on_startup=[refit_on_schedule],
        on_shutdown=[stop_schedule],
        is_public=public_paths(PUBLIC_ASSET_PATHS),  # what the sign-in page loads ahead
        # an event breaking the JSON bounds (a NUL, NaN, nesting) is rejected alone, the batch kept
        itemised_bodies={TRACK_PATH: "batch"},
    )
    app.state.settings = settings
    return app


app = create_app()
