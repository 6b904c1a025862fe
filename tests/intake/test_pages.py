"""The image a page's head names: Open Graph, then Twitter, never a pixel or an emoji."""

from __future__ import annotations

import pytest

from digest.intake.pages import page_image

PAGE = "https://budapestpost.example/politics/budget-passed"


def og(content: str, *extra: str) -> str:
    return f'<meta property="og:image" content="{content}">' + "".join(extra)


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (og("https://cdn.example/a.jpg"), ("https://cdn.example/a.jpg", "")),
        (og("/img/a.jpg"), ("https://budapestpost.example/img/a.jpg", "")),
        (og("a.jpg"), ("https://budapestpost.example/politics/a.jpg", "")),
        (
            '<base href="https://static.example/p/">' + og("a.jpg"),
            ("https://static.example/p/a.jpg", ""),
        ),
        (
            og("http://cdn.example/a.jpg")
            + '<meta property="og:image:secure_url" content="https://cdn.example/a.jpg">',
            ("https://cdn.example/a.jpg", ""),
        ),
        (
            '<meta property="og:image:url" content="https://cdn.example/u.jpg">',
            ("https://cdn.example/u.jpg", ""),
        ),
        (
            og(
                "https://cdn.example/a.jpg",
                '<meta property="og:image:alt" content="The &amp; vote">',
            ),
            ("https://cdn.example/a.jpg", "The & vote"),
        ),
        (
            '<meta name="twitter:image" content="https://cdn.example/t.jpg">'
            + og("https://cdn.example/a.jpg"),
            ("https://cdn.example/a.jpg", ""),
        ),
        (
            '<meta name="twitter:image" content="/t.jpg">',
            ("https://budapestpost.example/t.jpg", ""),
        ),
        (
            '<meta name="twitter:image:src" content="https://cdn.example/t.jpg">',
            ("https://cdn.example/t.jpg", ""),
        ),
        (
            og("https://stats.wordpress.com/b.gif") + og("https://cdn.example/real.jpg"),
            ("https://cdn.example/real.jpg", ""),
        ),
        (
            og(
                "https://cdn.example/spacer.gif",
                '<meta property="og:image:width" content="1">',
                '<meta property="og:image:height" content="1">',
            )
            + '<meta name="twitter:image" content="https://cdn.example/t.jpg">',
            ("https://cdn.example/t.jpg", ""),
        ),
        (og("https://s.w.org/images/core/emoji/15.0/72x72/1f600.png"), None),
        (og("javascript:alert(1)"), None),
        (og("data:image/gif;base64,R0lGODlhAQABAAAAACw="), None),
        (og("http://[::1/x.jpg"), None),
        (og(""), None),
        ("<title>No picture</title>", None),
        ("</head><body>" + og("https://cdn.example/body.jpg"), None),
        ("<body>" + og("https://cdn.example/body.jpg"), None),
        (og("https://cdn.example/" + "a" * 3000 + ".jpg"), None),
    ],
    ids=[
        "og-absolute",
        "og-root-relative",
        "og-relative",
        "base-href",
        "secure-url-preferred",
        "og-image-url",
        "og-alt",
        "og-before-twitter",
        "twitter-fallback-relative",
        "twitter-src",
        "tracking-pixel-path-passed-over",
        "1x1-passed-over-for-twitter",
        "emoji",
        "javascript-url",
        "data-url",
        "malformed-ipv6",
        "empty",
        "no-image",
        "after-head-ends",
        "in-body",
        "overlong-url",
    ],
)
def test_the_image_a_page_names(head: str, expected: tuple[str, str] | None) -> None:
    html = f"<!doctype html><html><head>{head}</head><body></body></html>"
    assert page_image(html.encode(), url=PAGE) == expected


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("<meta charset='iso-8859-2'>", ""),
        ("", "text/html; charset=ISO-8859-2"),
        ("<meta charset='base64'>", "text/html; charset=ISO-8859-2"),
    ],
    ids=["meta-charset", "content-type-charset", "content-type-wins"],
)
def test_the_page_is_read_in_its_own_encoding(body: str, content_type: str) -> None:
    alt = "<meta property='og:image:alt' content='Ősz a Dunán'>"
    page = f"<head>{body}{og('/a.jpg')}{alt}</head>".encode("iso-8859-2")
    found = page_image(page, url=PAGE, content_type=content_type)
    assert found == ("https://budapestpost.example/a.jpg", "Ősz a Dunán")


def test_a_codec_that_is_no_text_encoding_reads_as_utf8() -> None:
    page = f"<meta charset='base64'>{og('/a.jpg')}".encode()
    assert page_image(page, url=PAGE) == ("https://budapestpost.example/a.jpg", "")
