"""DKIM over a body of fixed segments and per-subscriber holes: the fixed lines are hashed once,
and the signature is still over exactly the bytes sent (dkimpy verifies, tampering breaks it)."""

from __future__ import annotations

import itertools
import random
from base64 import b64encode
from hashlib import sha256

import dkim
import pytest
from dkim.canonicalization import Relaxed

from digest.mail.bodyhash import body_plan
from digest.mail.dkim import DkimSigner, GeneratedKey, generate_key, load_private_key
from tests.mail.test_dkim import (
    DOMAIN,
    READER,
    SELECTOR,
    SENT_AT,
    digest_message,
    digest_template,
    tags,
)
from tests.support.dkim_dns import resolver

NOW = SENT_AT.timestamp()
# Pieces that canonicalisation changes, or that a careless chunking would change wrongly:
# runs, tabs and spaces at line ends, empty lines, lines split by a hole, and CRLFs in holes.
PIECES = [b" ", b"  ", b"\t", b"\r\n", b"\r\n\r\n", b"a", b"b c", b"=\r\n", b"x \t ", b"\r\n "]


def sent_form(body: bytes) -> bytes:
    return body if not body or body.endswith(b"\r\n") else body + b"\r\n"


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> GeneratedKey:
    return generate_key(tmp_path_factory.mktemp("dkim"), selector=SELECTOR, domain=DOMAIN)


@pytest.fixture(scope="module")
def signer(key: GeneratedKey) -> DkimSigner:
    return DkimSigner(
        domain=DOMAIN, selector=SELECTOR, private_key=load_private_key(key.private_key_path)
    )


def template() -> tuple[bytes, bytes, tuple[bytes, ...], list[bytes]]:
    """digest_message taken apart: the reader's fields, the fixed ones, segments and holes."""
    made = digest_template()
    head, holes = made.personal_parts(READER, date=SENT_AT)
    assert body_plan(made.segments).start is not None  # the shortcut, not the fallback
    assert head + made.fixed_head + body_plan(made.segments).join(holes) == digest_message()
    return head, made.fixed_head, made.segments, holes


def test_parts_sign_exactly_as_the_whole_message_does(
    signer: DkimSigner, key: GeneratedKey
) -> None:
    head, fixed, segments, holes = template()
    whole = signer.sign(digest_message(), now=NOW)
    parts = signer.sign_parts(head, fixed, segments, holes, now=NOW)
    assert parts == whole
    assert dkim.verify(parts, dnsfunc=resolver(key))


def test_another_readers_holes_verify_and_tampering_breaks_them(
    signer: DkimSigner, key: GeneratedKey
) -> None:
    head, fixed, segments, holes = template()
    other = [hole.replace(b"TOKEN", b"OTHER-READER") for hole in holes]
    assert other != holes
    signed = signer.sign_parts(head, fixed, segments, other)
    assert b"OTHER-READER" in signed and dkim.verify(signed, dnsfunc=resolver(key))
    for hole_byte in (b"OTHER-READER", b"Leiratkoz"):
        assert not dkim.verify(
            signed.replace(hole_byte, hole_byte[:-1] + b"Z"), dnsfunc=resolver(key)
        )
    assert tags(signed)[b"bh"] != tags(signer.sign_parts(head, fixed, segments, holes))[b"bh"]


def test_body_hash_matches_dkimpy_for_any_chunking() -> None:
    # Random bodies of the pieces above, cut into segments and holes at random places: the
    # planned hash is dkimpy's hash of the joined body every time.
    chance = random.Random(2026)
    planned = 0
    for _ in range(3000):
        body = b"".join(chance.choice(PIECES) for _ in range(chance.randrange(0, 16)))
        count = min(len(body) + 1, 2 * chance.randrange(4)) // 2 * 2  # even: segments = holes + 1
        cuts = sorted(chance.sample(range(len(body) + 1), count))
        edges = [0, *cuts, len(body)]
        chunks = [body[a:b] for a, b in itertools.pairwise(edges)]
        segments, holes = tuple(chunks[0::2]), chunks[1::2]
        plan = body_plan(segments)
        planned += plan.start is not None
        joined = plan.join(holes)
        assert joined == body
        expected = Relaxed.canonicalize_body(sent_form(body))
        assert plan.body_hash(holes, joined) == b64encode(sha256(expected).digest()), (
            segments,
            holes,
        )
    assert planned > 500  # many layouts take the shortcut, not the whole-body fallback
