"""The services' uvicorn protocol: a request the server cannot read gets problem+json, not plain text."""

import asyncio
import json
import socket

import httpx
import uvicorn
from fastapi import FastAPI

from servicekit.http.server import ProblemHttpProtocol


async def _serve(app: FastAPI) -> tuple[uvicorn.Server, asyncio.Task[None], int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(app, http=ProblemHttpProtocol, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        assert not task.done()
        await asyncio.sleep(0.01)
    return server, task, sock.getsockname()[1]


async def _raw(port: int, request: bytes) -> tuple[str, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    answer = await reader.read()  # the server closes the connection after its 400
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *lines = head.decode().split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return status, headers, body


async def test_an_unreadable_request_gets_problem_json_and_a_readable_one_the_app() -> None:
    app = FastAPI()

    @app.get("/echo")
    async def echo(q: str = "") -> dict[str, int]:
        return {"length": len(q)}

    server, task, port = await _serve(app)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            fine = await client.get("/echo", params={"q": "a" * 60_000})
        too_long = await _raw(port, b"GET /echo?q=" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        malformed = await _raw(port, b"GET /echo HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n")
    finally:
        server.should_exit = True
        await task

    assert (fine.status_code, fine.json()) == (200, {"length": 60_000})
    for status, headers, body in (too_long, malformed):
        assert status == "HTTP/1.1 400 Bad Request"
        assert headers["content-type"] == "application/problem+json"
        assert int(headers["content-length"]) == len(body)
        problem = json.loads(body)
        assert (problem["status"], problem["title"]) == (400, "Bad Request")
        assert "64 KiB" in problem["detail"]
