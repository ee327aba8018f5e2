"""productpage's HTML, built with plain strings (no template engine).

Client-visible markers are those of docs/BOOKINFO.md §1: the title, ``Sign out``, the
error headings and sentences, ``Reviews served by:``, and one element per star:
``<span class="glyphicon glyphicon-star" style="color: <color>"></span>`` for a
filled star and ``glyphicon glyphicon-star-empty`` (same style) for an empty one.
"""

from __future__ import annotations

from html import escape
from typing import Any

TITLE = "Simple Bookstore App"
DETAILS_ERROR = "Error fetching product details"
DETAILS_SORRY = "Sorry, product details are currently unavailable for this book."
REVIEWS_ERROR = "Error fetching product reviews"
REVIEWS_SORRY = "Sorry, product reviews are currently unavailable for this book."

_HEAD = (
    '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
    f"<title>{TITLE}</title>\n"
    '<link rel="stylesheet" href="static/style.css">\n</head>\n<body>\n'
)
_TAIL = "</body>\n</html>\n"


def landing(tree: list[tuple[str, str]]) -> str:
    """The ``/`` page: the service tree and two links to the product page."""
    rows = "".join(
        f"<tr><td>{escape(name)}</td><td>{escape(calls)}</td></tr>\n" for name, calls in tree
    )
    return (
        f"{_HEAD}<h1>{TITLE}</h1>\n"
        "<p>A small bookstore made of four services:</p>\n"
        '<table class="services">\n<tr><th>Service</th><th>Calls</th></tr>\n'
        f"{rows}</table>\n"
        '<p><a href="/productpage?u=normal">Normal user</a> | '
        '<a href="/productpage?u=test">Test user</a></p>\n'
        f"{_TAIL}"
    )


def _header(user: str) -> str:
    if user:
        return (
            f'<nav class="bar"><span class="brand">BookInfo Sample</span>'
            f'<span class="user">{escape(user)}</span> '
            '<a class="signout" href="logout">Sign out</a></nav>\n'
        )
    return (
        '<nav class="bar"><span class="brand">BookInfo Sample</span>'
        '<form class="signin" method="post" action="login">'
        '<input type="text" name="username" placeholder="User Name"> '
        '<input type="password" name="passwd" placeholder="Password"> '
        '<button type="submit">Sign in</button></form></nav>\n'
    )


def _details(status: int, details: dict[str, Any]) -> str:
    if status != 200:
        return f"<h4>{DETAILS_ERROR}</h4>\n<p>{DETAILS_SORRY}</p>\n"
    rows = (
        ("Type", details.get("type")),
        ("Pages", details.get("pages")),
        ("Publisher", details.get("publisher")),
        ("Language", details.get("language")),
        ("ISBN-10", details.get("ISBN-10")),
        ("ISBN-13", details.get("ISBN-13")),
    )
    cells = "".join(f"<dt>{k}:</dt><dd>{escape(str(v))}</dd>\n" for k, v in rows)
    return f'<h4>Book Details</h4>\n<dl class="details">\n{cells}</dl>\n'


def _stars(rating: Any) -> str:
    if not isinstance(rating, dict):
        return ""
    stars = rating.get("stars")
    if stars:
        try:
            filled = max(0, min(5, int(stars)))
        except (TypeError, ValueError):
            filled = 0
        style = f'style="color: {escape(str(rating.get("color", "")))}"'
        return (
            '<p class="stars">'
            + f'<span class="glyphicon glyphicon-star" {style}></span>' * filled
            + f'<span class="glyphicon glyphicon-star-empty" {style}></span>' * (5 - filled)
            + "</p>\n"
        )
    if rating.get("error"):
        return f'<p class="rating-error">{escape(str(rating["error"]))}</p>\n'
    return ""


def _reviews(status: int, reviews: dict[str, Any]) -> str:
    if status != 200:
        return f"<h4>{REVIEWS_ERROR}</h4>\n<p>{REVIEWS_SORRY}</p>\n"
    parts = ["<h4>Book Reviews</h4>\n"]
    items = reviews.get("reviews")
    for review in items if isinstance(items, list) else []:
        if not isinstance(review, dict):
            continue
        parts.append(
            '<blockquote class="review">\n'
            f"<p>{escape(str(review.get('text', '')))}</p>\n"
            f"<small>{escape(str(review.get('reviewer', '')))}</small>\n"
            f"{_stars(review.get('rating'))}</blockquote>\n"
        )
    served = escape(str(reviews.get("podname", "")))
    cluster = str(reviews.get("clustername", "null"))
    if cluster != "null":
        served += f" on cluster {escape(cluster)}"
    parts.append(f'<p class="served-by">Reviews served by: <u>{served}</u></p>\n')
    return "".join(parts)


def product_page(
    *,
    user: str,
    product: dict[str, Any],
    details_status: int,
    details: dict[str, Any],
    reviews_status: int,
    reviews: dict[str, Any],
) -> str:
    """The ``/productpage`` HTML for one set of backend answers."""
    return "".join(
        (
            _HEAD,
            _header(user),
            '<main class="product">\n',
            f"<h2>{escape(product['title'])}</h2>\n",
            # descriptionHtml is our own fixed markup, rendered as HTML on purpose.
            f'<p class="summary">{product["descriptionHtml"]}</p>\n',
            '<section class="col">\n',
            _details(details_status, details),
            '</section>\n<section class="col">\n',
            _reviews(reviews_status, reviews),
            "</section>\n</main>\n",
            _TAIL,
        )
    )
