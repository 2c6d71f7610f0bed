"""The HTTP protocol every service's uvicorn runs (`--http servicekit.http.server:ProblemHttpProtocol`).

uvicorn answers a request it cannot parse (a malformed request line or header, or one longer than its
parser reads: 64 KiB) itself, before the app sees anything, with a plain-text 400. This is
uvicorn's httptools protocol with that one answer written as problem+json, like every other error of
the platform; everything else is uvicorn's.
"""

from __future__ import annotations

import json

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_BODY = json.dumps(
    {
        "type": "about:blank",
        "title": "Bad Request",
        "status": 400,
        "detail": "The HTTP request could not be read: it is malformed, or its request line or a header is "
        "longer than the server reads (64 KiB; send large data in a body).",
    }
).encode()


class ProblemHttpProtocol(HttpToolsProtocol):
    def send_400_response(self, msg: str) -> None:  # uvicorn's plain-text answer, as problem+json
        head = [b"HTTP/1.1 400 Bad Request\r\n"]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [
            b"content-type: application/problem+json\r\n",
            b"content-length: " + str(len(_BODY)).encode() + b"\r\n",
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + _BODY)
        self.transport.close()
