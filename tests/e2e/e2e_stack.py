"""The running stack e2e tests talk to: the real gateway and a real service, with helpers."""

from __future__ import annotations

import base64
from dataclasses import dataclass

import httpx

from gateway.runtime import Gateway
from gateway.testing import TokenForge
from gateway.users import create_user

ADMIN_PASSWORD = "e2e admin password"


@dataclass
class Stack:
    gateway_url: str
    customer_url: str
    gateway: Gateway
    http: httpx.AsyncClient

    @property
    def forge(self) -> TokenForge:
        return TokenForge(self.gateway)

    async def admin_headers(self, email: str) -> dict[str, str]:
        async with self.gateway.database.session() as session:
            await create_user(session, email=email, password=ADMIN_PASSWORD, roles=["admin"])
        response = await self.http.post(
            f"{self.gateway_url}/oauth/token",
            data={"grant_type": "password", "username": email, "password": ADMIN_PASSWORD},
        )
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    async def new_client(self, admin: dict[str, str], role: str) -> tuple[str, str]:
        response = await self.http.post(
            f"{self.gateway_url}/admin/clients", json={"name": f"e2e {role}", "role": role}, headers=admin
        )
        assert response.status_code == 201, response.text
        return response.json()["client_id"], response.json()["client_secret"]

    async def client_token(self, client_id: str, secret: str) -> str:
        basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        response = await self.http.post(
            f"{self.gateway_url}/oauth/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": f"Basic {basic}"},
        )
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token
