"""File uploads: one dependency that accepts a multipart form (`file` part) or a raw request body.

Either way the route gets an `Upload`: the file's bytes spooled to a temporary file (in memory up to
1 MiB, then on disk), its size, media type and name. The body limit of the request is raised to the
route's own upload limit (413 problem+json past it). The dependency closes the file after the response
unless the route `detach()`es it to keep it for a background job.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from tempfile import SpooledTemporaryFile
from typing import IO, Any

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from servicekit.errors import UnprocessableEntity
from servicekit.http.limits import raise_body_limit

SPOOL_MEMORY_BYTES = 1024 * 1024
FILE_FIELD = "file"


@dataclass
class Upload:
    file: IO[bytes]
    """The uploaded bytes, positioned at the start."""
    size: int
    content_type: str | None
    """The file part's media type (multipart) or the request's Content-Type (raw body), without params."""
    filename: str | None
    detached: bool = field(default=False)

    def detach(self) -> IO[bytes]:
        """Take ownership of the file (the caller closes it); it is then not closed after the response."""
        self.detached = True
        return self.file

    def close(self) -> None:
        self.file.close()


def _media_type(value: str | None) -> str | None:
    return value.split(";", 1)[0].strip().lower() or None if value else None


async def _raw_upload(request: Request) -> Upload:
    spool: SpooledTemporaryFile[bytes] = SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)  # noqa: SIM115
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > SPOOL_MEMORY_BYTES:  # on disk by now: do not block the event loop on the write
                await asyncio.to_thread(spool.write, chunk)
            else:
                spool.write(chunk)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return Upload(spool, size, _media_type(request.headers.get("content-type")), None)


async def _multipart_upload(request: Request) -> Upload:
    parser = MultiPartParser(
        request.headers, request.stream(), max_files=1, max_fields=20, max_part_size=64 * 1024
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise UnprocessableEntity(f"The multipart body cannot be read: {exc.message}") from None
    files = [value for _, value in form.multi_items() if isinstance(value, UploadFile)]
    chosen = form.get(FILE_FIELD)
    if not isinstance(chosen, UploadFile):
        chosen = files[0] if len(files) == 1 else None
    if chosen is None:
        for other in files:
            await other.close()
        raise UnprocessableEntity(
            f"The multipart body has no file part; send the file in a part named {FILE_FIELD!r}, "
            "or send the file itself as the request body."
        )
    chosen.file.seek(0)
    return Upload(chosen.file, chosen.size or 0, _media_type(chosen.content_type), chosen.filename)


async def receive_upload(request: Request, *, max_bytes: int) -> Upload:
    """The upload of this request, from a multipart form or the raw body, at most `max_bytes`."""
    raise_body_limit(request, max_bytes)
    if _media_type(request.headers.get("content-type")) == "multipart/form-data":
        return await _multipart_upload(request)
    return await _raw_upload(request)


def upload_dependency(max_bytes: int) -> Callable[[Request], AsyncIterator[Upload]]:
    """A FastAPI dependency yielding the request's `Upload` (multipart or raw), closed after the response
    unless detached."""

    async def dependency(request: Request) -> AsyncIterator[Upload]:
        upload = await receive_upload(request, max_bytes=max_bytes)
        try:
            yield upload
        finally:
            if not upload.detached:
                upload.close()

    return dependency


def upload_openapi(*media_types: str, description: str = "The file") -> dict[str, Any]:
    """`openapi_extra` of an upload route: the raw media types it takes, and multipart with a `file` part."""
    content: dict[str, Any] = {media: {"schema": {"type": "string"}} for media in media_types}
    content["multipart/form-data"] = {
        "schema": {
            "type": "object",
            "required": [FILE_FIELD],
            "properties": {FILE_FIELD: {"type": "string", "format": "binary", "description": description}},
        }
    }
    return {"requestBody": {"required": True, "content": content}}
