"""Classifiers: turn one response (status, body, headers) into an outcome class.

They run once per request in the generator's hot path, so they use plain ``bytes``
searches and never parse HTML or JSON. Class names come from
:mod:`meshchaos.outcomes`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

from meshchaos.outcomes import Bookinfo, status_class

__all__ = ["Classifier", "classifier_for_url", "classify_bookinfo", "classify_status"]

Classifier = Callable[[int, bytes, Mapping[str, str]], str]
"""``(status, body, headers) -> outcome class``."""

# Interned per status code: the hot path should not format a string per request.
_STATUS_CLASSES: dict[int, str] = {}


def classify_status(status: int, body: bytes, headers: Mapping[str, str]) -> str:
    """``status:<code>`` for any response."""
    cls = _STATUS_CLASSES.get(status)
    if cls is None:
        cls = _STATUS_CLASSES[status] = status_class(status)
    return cls


# Product page markers (docs/BOOKINFO.md §1). The old templates ended headings with "!",
# which these prefixes match too.
_PAGE = b"Simple Bookstore App"
_DETAILS_ERROR = b"Error fetching product details"
_REVIEWS_ERROR = b"Error fetching product reviews"
_RATINGS_UNAVAILABLE = b"Ratings service is currently unavailable"
# The closing quote excludes "glyphicon glyphicon-star-empty".
_FILLED_STAR = b'glyphicon glyphicon-star"'
_COLOR = b"color:"
# /api/v1/products/<id>/reviews JSON (the reviews service's answer, passed through)
_JSON_REVIEWS = b'"reviews"'
_JSON_STARS = b'"stars"'
_JSON_COLOR = b'"color"'

_BY_COLOR = {b"black": Bookinfo.REVIEWS_V2.value, b"red": Bookinfo.REVIEWS_V3.value}


def _star_class(color: bytes) -> str:
    cls = _BY_COLOR.get(color)
    # A colour no Bookinfo version uses still deserves a class of its own.
    return cls if cls is not None else f"reviews-stars-{color.decode('ascii', 'replace')}"


def _html_star_color(body: bytes, star: int) -> bytes:
    # The colour sits in the star element's own style attribute; look only inside
    # that tag so CSS elsewhere on the page cannot leak in.
    tag_start = max(body.rfind(b"<", 0, star), 0)
    tag_end = body.find(b">", star)
    tag = body[tag_start : tag_end if tag_end >= 0 else star + 200]
    at = tag.find(_COLOR)
    if at < 0:
        return b"black"  # Bootstrap's default text colour
    value = tag[at + len(_COLOR) :].lstrip()
    end = 0
    while end < len(value) and value[end : end + 1] not in b"\"';> ":
        end += 1
    return value[:end].lower()


def _json_star_color(body: bytes) -> bytes:
    at = body.find(_JSON_COLOR)
    if at < 0:
        return b"black"  # reviews' default STAR_COLOR
    start = body.find(b'"', body.find(b":", at) + 1)
    end = body.find(b'"', start + 1)
    return body[start + 1 : end].lower() if start >= 0 and end > start else b"?"


def classify_bookinfo(status: int, body: bytes, headers: Mapping[str, str]) -> str:
    """Bookinfo outcome of a product page or ``/api/v1/products/<id>/reviews`` response.

    The page: ``details-and-reviews-error``, ``reviews-error``, ``details-error``
    (reviews fine), else the reviews variant: ``ratings-unavailable``,
    ``reviews-v2-black``, ``reviews-v3-red`` or ``reviews-v1`` (no stars, no
    ratings message). The reviews JSON maps to the same variant classes. Any other
    response (non-200, other pages) is ``status:<code>``.
    """
    if status != 200:
        return classify_status(status, body, headers)
    if _PAGE in body:
        details_error = _DETAILS_ERROR in body
        if _REVIEWS_ERROR in body:
            return Bookinfo.BOTH_ERROR.value if details_error else Bookinfo.REVIEWS_ERROR.value
        if details_error:
            return Bookinfo.DETAILS_ERROR.value
        if _RATINGS_UNAVAILABLE in body:
            return Bookinfo.RATINGS_UNAVAILABLE.value
        star = body.find(_FILLED_STAR)
        if star >= 0:
            return _star_class(_html_star_color(body, star))
        return Bookinfo.REVIEWS_V1.value
    if _JSON_REVIEWS in body:
        if _RATINGS_UNAVAILABLE in body:
            return Bookinfo.RATINGS_UNAVAILABLE.value
        if _JSON_STARS in body:
            return _star_class(_json_star_color(body))
        return Bookinfo.REVIEWS_V1.value
    return classify_status(status, body, headers)


def classifier_for_url(url: str) -> Classifier:
    """Bookinfo's classes for its product page and reviews API, status classes otherwise."""
    path = urlsplit(url).path
    if path.startswith(("/productpage", "/api/v1/products")):
        return classify_bookinfo
    return classify_status
