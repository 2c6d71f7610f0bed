"""ETag / If-Match optimistic concurrency: a stale write gets 412, never a silent lost update."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Response

from servicekit.errors import PreconditionFailed, PreconditionRequired


def etag_for(version: int | str) -> str:
    return f'"{version}"'


def set_etag(response: Response, version: int | str) -> None:
    response.headers["ETag"] = etag_for(version)


def parse_if_match(value: str | None) -> list[str] | None:
    """The entity tags of an If-Match header. Weak tags (W/"…") never match: RFC 9110 requires
    strong comparison for If-Match, so they are dropped."""
    if value is None:
        return None
    value = value.strip()
    if value == "*":
        return ["*"]
    tags = []
    for part in value.split(","):
        tag = part.strip()
        if tag.startswith("W/"):
            continue
        tags.append(tag.strip('"'))
    return tags


def check_if_match(if_match: str | None, current_version: int | str, *, required: bool = True) -> None:
    """Raise 428 when a required If-Match is absent, 412 when it names another version."""
    tags = parse_if_match(if_match)
    if tags is None:
        if required:
            raise PreconditionRequired("Send If-Match with the ETag you read to update this resource.")
        return
    if "*" in tags or str(current_version) in tags:
        return
    raise PreconditionFailed(
        f"The resource has changed (current version {current_version}); read it again and retry."
    )


async def if_match_header(
    if_match: Annotated[
        str | None, Header(alias="If-Match", description="The ETag of the version you are updating")
    ] = None,
) -> str | None:
    """The If-Match header, optional at the HTTP layer so that its absence becomes 428, not 422."""
    return if_match


IfMatchDep = Annotated[str | None, Depends(if_match_header)]
