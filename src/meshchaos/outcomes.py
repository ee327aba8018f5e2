"""Outcome classes: what a single request turned into, as a client can observe it.

Shared vocabulary of the load generator's classifiers and the oracle's predictions.
Bookinfo classes describe the product page; any other response is classed by its
status code as ``status:<code>`` (see :func:`status_class`), and a request that got
no response at all is ``error:<kind>``.
"""

from __future__ import annotations

from enum import StrEnum


class Bookinfo(StrEnum):
    """Outcome classes of a Bookinfo product page (or its reviews API) request."""

    REVIEWS_V1 = "reviews-v1"  # reviews shown, no stars, no ratings message
    REVIEWS_V2 = "reviews-v2-black"  # black stars
    REVIEWS_V3 = "reviews-v3-red"  # red stars
    RATINGS_UNAVAILABLE = "ratings-unavailable"  # "Ratings service is currently unavailable"
    REVIEWS_ERROR = "reviews-error"  # "Error fetching product reviews"
    DETAILS_ERROR = "details-error"  # "Error fetching product details", reviews fine
    BOTH_ERROR = "details-and-reviews-error"


def status_class(code: int) -> str:
    """The generic class of a response with HTTP status ``code``."""
    return f"status:{code}"


def error_class(kind: str) -> str:
    """The class of a request that got no HTTP response (``timeout``, ``connect``, ...)."""
    return f"error:{kind}"
