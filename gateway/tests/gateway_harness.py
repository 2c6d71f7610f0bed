"""The running gateway that tests talk to, with helpers to set up users, clients and tokens."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass

import httpx
from fastapi import FastAPI

from gateway.runtime import Gateway
from gateway.testing import TokenForge
from gateway.users import create_user

ADMIN_PASSWORD = "correct horse battery staple"


@dataclass
class RunningGateway:
    """A gateway running in-process on a migrated database, with helpers to set up callers."""

    app: FastAPI
    http: httpx.AsyncClient

    @property
    def runtime(self) -> Gateway:
        gateway: Gateway = self.app.state.gateway
        return gateway

    @property
    def forge(self) -> TokenForge:
        return TokenForge(self.runtime)

    async def add_user(self, *roles: str, password: str = ADMIN_PASSWORD) -> str:
        email = f"{uuid.uuid4().hex[:10]}@example.test"
        async with self.runtime.database.session() as session:
            await create_user(session, email=email, password=password, roles=list(roles or ("admin",)))
        return email

    async def password_grant(
        self, email: str, password: str = ADMIN_PASSWORD, **extra: str
    ) -> httpx.Response:
        data = {"grant_type": "password", "username": email, "password": password, **extra}
        return await self.http.post("/oauth/token", data=data)

    async def admin_headers(self) -> dict[str, str]:
        response = await self.password_grant(await self.add_user("admin"))
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    async def add_client(self, role: str = "storefront") -> tuple[str, str]:
        response = await self.http.post(
            "/admin/clients", json={"name": f"test {role}", "role": role}, headers=await self.admin_headers()
        )
        assert response.status_code == 201, response.text
        body = response.json()
        return body["client_id"], body["client_secret"]

    async def client_token(self, client_id: str, secret: str, **extra: str) -> httpx.Response:
        basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        return await self.http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials", **extra},
            headers={"Authorization": f"Basic {basic}"},
        )

    async def machine_headers(self, role: str = "storefront") -> dict[str, str]:
        response = await self.client_token(*await self.add_client(role))
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}
