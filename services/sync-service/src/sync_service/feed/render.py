"""A feed channel's listings as a Google Merchant Center product feed: RSS 2.0 with the `g:` namespace.

Every text goes through the standard library's `XMLGenerator` (which escapes `&`, `<`, `>` and quotes),
after the characters XML 1.0 cannot hold at all (control characters, lone surrogates, U+FFFE/U+FFFF)
are removed. Emoji and every other character are kept: the document is UTF-8.

A listing is an item when it is publishable and has what Google requires of every item (a title, a
price, an image); a listing without a brand or a GTIN says `g:identifier_exists` no.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import XMLGenerator
from xml.sax.xmlreader import AttributesImpl

G_NAMESPACE = "http://base.google.com/ns/1.0"
CONDITIONS = ("new", "used", "refurbished")
MAX_TEXT = {"title": 150, "description": 5000, "brand": 70}
_NO_ATTRIBUTES: AttributesImpl[str] = AttributesImpl({})
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def clean(value: object, limit: int | None = None) -> str:
    """`value` as text XML 1.0 can carry, trimmed to `limit` characters."""
    text = _NOT_XML.sub("", str(value)).strip()
    return text[:limit] if limit is not None else text


def _money(amount: object, currency: str) -> str | None:
    try:
        value = Decimal(str(amount))
    except (InvalidOperation, ValueError):
        return None
    if not value.is_finite():
        return None
    return f"{value.quantize(Decimal('0.01'))} {currency}"


def availability(state: Mapping[str, Any]) -> str:
    """in_stock with units to sell; backorder when the product takes backorders; out_of_stock else."""
    quantity = state.get("quantity")
    if isinstance(quantity, int) and quantity > 0:
        return "in_stock"
    attributes = state.get("attributes") or {}
    if isinstance(attributes, dict) and attributes.get("backorder") in (True, "true", "yes"):
        return "backorder"
    return "out_of_stock"


def item_fields(state: Mapping[str, Any], *, link_base: str) -> list[tuple[str, str]] | None:
    """The item's elements in order, or None when the listing lacks what Google requires."""
    currency = str(state.get("currency") or "")
    title = clean(state.get("title") or "", MAX_TEXT["title"])
    price = _money(state.get("price"), currency) if state.get("price") is not None else None
    media = state.get("media_urls") or []
    image = clean(media[0]) if isinstance(media, list) and media else ""
    sku = clean(state.get("sku") or "", 50)
    product_id = str(state.get("product_id") or "")
    if not (title and price and image and sku and currency):
        return None
    description = clean(state.get("description") or "", MAX_TEXT["description"]) or title
    link = f"{link_base.rstrip('/')}/products/{quote(product_id, safe='')}?sku={quote(sku, safe='')}"
    fields: list[tuple[str, str]] = [
        ("g:id", sku),
        ("title", title),
        ("description", description),
        ("link", link),
        ("g:image_link", image),
    ]
    fields += [("g:additional_image_link", clean(url)) for url in media[1:11]]
    fields += [("g:availability", availability(state)), ("g:price", price)]
    sale = state.get("sale")
    if isinstance(sale, dict) and sale.get("price") is not None:
        sale_price = _money(sale["price"], currency)
        if sale_price is not None:
            fields.append(("g:sale_price", sale_price))
            if sale.get("starts_at") and sale.get("ends_at"):
                fields.append(
                    ("g:sale_price_effective_date", f"{clean(sale['starts_at'])}/{clean(sale['ends_at'])}")
                )
    gtin = clean(state.get("gtin") or "", 50)
    brand = clean(state.get("brand") or "", MAX_TEXT["brand"])
    attributes = state.get("attributes") if isinstance(state.get("attributes"), dict) else {}
    mpn = clean(attributes.get("mpn") or "", 70) if isinstance(attributes, dict) else ""
    if gtin:
        fields.append(("g:gtin", gtin))
    if brand:
        fields.append(("g:brand", brand))
    if mpn:
        fields.append(("g:mpn", mpn))
    if not (gtin or brand or mpn):
        fields.append(("g:identifier_exists", "no"))
    condition = str(attributes.get("condition") or "new") if isinstance(attributes, dict) else "new"
    fields.append(("g:condition", condition if condition in CONDITIONS else "new"))
    if state.get("variant_attributes"):
        fields.append(("g:item_group_id", clean(product_id, 50)))
    return fields


class FeedWriter:
    """Writes the feed piece by piece: `head()`, `item()` for each listing, `tail()`; each returns the
    UTF-8 bytes written since the previous call."""

    def __init__(self) -> None:
        self._buffer = io.StringIO()
        self._xml = XMLGenerator(self._buffer, encoding="utf-8", short_empty_elements=True)

    def _take(self) -> bytes:
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return text.encode("utf-8")

    def _element(self, name: str, text: str) -> None:
        self._xml.startElement(name, _NO_ATTRIBUTES)
        self._xml.characters(text)
        self._xml.endElement(name)

    def head(self, *, title: str, link: str, description: str) -> bytes:
        self._xml.startDocument()
        self._xml.startElement("rss", AttributesImpl({"version": "2.0", "xmlns:g": G_NAMESPACE}))
        self._xml.startElement("channel", _NO_ATTRIBUTES)
        self._element("title", clean(title, 150))
        self._element("link", clean(link))
        self._element("description", clean(description, 5000))
        return self._take()

    def item(self, fields: list[tuple[str, str]]) -> bytes:
        self._xml.startElement("item", _NO_ATTRIBUTES)
        for name, text in fields:
            self._element(name, text)
        self._xml.endElement("item")
        return self._take()

    def tail(self) -> bytes:
        self._xml.endElement("channel")
        self._xml.endElement("rss")
        self._xml.endDocument()
        return self._take()
