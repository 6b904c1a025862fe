"""What spam filters score: SpamAssassin's content rules over the seeded daily digest as sent.

One `spamassassin -L -t` run scores two messages: the digest exactly as the SMTP server got
it, and a copy whose preheader uses the old hiding technique (1 px text in the background
colour, opacity 0). The copy must be caught, which shows SpamAssassin reads our HTML; the
digest must hit no rule but the few below, each allowed for the reason given.
"""

from __future__ import annotations

import re
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import pytest

from tests.support.spamassassin import Verdict, score_messages

# Rules about where the test takes the message, not about what it says.
ENVIRONMENT = {
    # The bytes come straight from our SMTP client; the first relay adds a Received header.
    "NO_RECEIVED": "no Received header before the first relay",
    "NO_RELAYS": "no relay has handled the message yet",
}
# Rules that describe the kind of message and score nothing (0.001 in every score set of
# SpamAssassin 4.0.1's 50_scores.cf); allowed only while they stay below INFORMATIONAL_LIMIT.
INFORMATIONAL = {
    "HTML_MESSAGE": "the digest has an HTML part, as every HTML newsletter has",
    # Text length over image area (width x height attributes). The seeded edition, with a
    # 600x338 lead image and 160x107 thumbnails, sits at 0.006-0.008: that measures the day's
    # articles, not a technique, and the four ranges weigh nothing.
    "HTML_IMAGE_RATIO_02": "the edition's text-to-image ratio",
    "HTML_IMAGE_RATIO_04": "the edition's text-to-image ratio",
    "HTML_IMAGE_RATIO_06": "the edition's text-to-image ratio",
    "HTML_IMAGE_RATIO_08": "the edition's text-to-image ratio",
}
INFORMATIONAL_LIMIT = 0.01
# The old preheader, which filters read as hidden text (HTML_FONT_LOW_CONTRAST +0.713).
HIDDEN_PREHEADER = (
    "display:none;max-height:0;overflow:hidden;mso-hide:all;"
    "font-size:1px;line-height:1px;color:#f0efeb;opacity:0;"
)
# The first hidden <div> of the body is the preheader (the spacer after it is the second).
PREHEADER = re.compile(r'<div style="display:none[^"]*">')


def _parse(data: bytes) -> EmailMessage:
    message = BytesParser(policy=policy.default).parsebytes(data)
    assert isinstance(message, EmailMessage)
    return message


def with_low_contrast_preheader(data: bytes) -> bytes:
    """The digest with its preheader hidden the old way, under a Message-ID of its own."""
    message = _parse(data)
    part = message.get_body(("html",))
    assert part is not None
    html = part.get_content()
    assert PREHEADER.search(html), "no preheader in the digest"
    part.set_content(
        PREHEADER.sub(f'<div style="{HIDDEN_PREHEADER}">', html, count=1),
        subtype="html",
        charset="utf-8",
        cte="quoted-printable",
    )
    message.replace_header("Message-ID", "<low-contrast-preheader@budapestpost.example>")
    return message.as_bytes(policy=policy.SMTP)


@pytest.fixture(scope="module")
def verdicts(
    daily_digest_as_sent: bytes, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Verdict]:
    return score_messages(
        {
            "digest": daily_digest_as_sent,
            "low-contrast": with_low_contrast_preheader(daily_digest_as_sent),
        },
        tmp_path_factory.mktemp("spamassassin"),
    )


def test_the_seeded_digest_hits_no_content_rule(verdicts: dict[str, Verdict]) -> None:
    verdict = verdicts["digest"]
    unexpected = set(verdict.rules) - set(ENVIRONMENT) - set(INFORMATIONAL)
    assert not unexpected, f"content rules hit: {sorted(unexpected)}\n{verdict.report}"
    weighing = {
        rule: points
        for rule, points in verdict.rules.items()
        if rule in INFORMATIONAL and points >= INFORMATIONAL_LIMIT
    }
    assert not weighing, f"informational rules that now score: {weighing}\n{verdict.report}"


def test_a_preheader_hidden_in_low_contrast_text_is_caught(verdicts: dict[str, Verdict]) -> None:
    # Shows the check sees our HTML: the same message, the old preheader, and the rule fires.
    assert "HTML_FONT_LOW_CONTRAST" in verdicts["low-contrast"].rules
    assert "HTML_FONT_LOW_CONTRAST" not in verdicts["digest"].rules
    assert verdicts["low-contrast"].score > verdicts["digest"].score
