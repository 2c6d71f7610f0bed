"""Ecom gateway: wiring only."""

from __future__ import annotations

from fastapi import FastAPI

from gateway.auth import gate_authenticate, is_public
from gateway.config import Settings
from gateway.dashboard import dashboard_routes
from gateway.eventdocs import event_docs_routes
from gateway.events import CONSUMERS
from gateway.openapi import docs_routes
from gateway.proxy import PROXY_ROUTE, ProxyFastPath
from gateway.routers import admin, me, oauth, web, wellknown
from gateway.runtime import GatewayKeys, start_gateway, stop_gateway
from servicekit.app import create_service_app
from servicekit.auth import TokenVerifier
from servicekit.routes import whoami_router


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    async def startup(app: FastAPI) -> None:
        await start_gateway(app, settings)

    app = create_service_app(
        settings,
        title="Ecom gateway",
        description="The front door: issues tokens, routes and rate-limits the API, merges the API docs.",
        routers=[
            oauth.router,
            wellknown.router,
            admin.router,
            me.router,
            web.router,
            whoami_router(),
        ],
        consumers=CONSUMERS,
        on_startup=[startup],
        on_shutdown=[stop_gateway],
        is_public=is_public,
        authenticate=gate_authenticate,
    )
    # Services verify against the JWKS over HTTP; the gateway reads its own key ring directly.
    app.state.token_verifier = TokenVerifier(
        GatewayKeys(app), issuer=settings.jwt_issuer, audience=settings.jwt_audience
    )
    docs = docs_routes(app)
    replaced = {route.path for route in docs}
    app.router.routes = [r for r in app.router.routes if getattr(r, "path", None) not in replaced]
    app.router.routes.extend(docs)
    app.router.routes.extend(event_docs_routes())
    app.router.routes.extend(dashboard_routes())
    # First: most traffic is proxied, and Starlette tries routes in order.
    app.router.routes.insert(0, PROXY_ROUTE)
    app.add_middleware(ProxyFastPath)
    return app


app = create_app()
