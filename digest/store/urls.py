"""Canonical article URLs: the key that makes one story page one article, whatever the source."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

TRACKING = frozenset(
    # Query parameters that say how a reader arrived, never which page: campaign tags, click ids.
    (
        "fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid",
        "ttclid", "igshid", "mc_cid", "mc_eid", "_ga", "_gl", "_hsenc", "_hsmi", "mkt_tok",
        "oly_anon_id", "oly_enc_id", "vero_id", "wickedid", "rb_clickid", "s_cid", "ncid", "cmpid",
        "ito",
    )
)  # fmt: skip
_DEFAULT_PORTS = {"http": 80, "https": 443}


def canonical_url(url: str) -> str:
    """The URL with scheme and host in lower case, no default port, fragment or trailing slash,
    and no tracking parameters (utm_* and the click ids in TRACKING); the rest sorted.

    Path and remaining query keep their case: on most servers /News and /news differ.
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:  # a port that is not a number: keep the URL as given, it is a key only
        port = None
    netloc = host if port in (None, _DEFAULT_PORTS.get(scheme)) else f"{host}:{port}"
    path = parts.path.rstrip("/")
    query = sorted(
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if not key.lower().startswith("utm_") and key.lower() not in TRACKING
    )
    return urlunsplit((scheme, netloc, path, urlencode(query), ""))
