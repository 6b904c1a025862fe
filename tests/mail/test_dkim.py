"""DKIM: real signatures over real digest messages, verified offline by dkimpy (EMAIL.md #34-41)."""

from __future__ import annotations

import re
import stat
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import dkim
import pytest
import typer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from dkim.util import parse_tag_value
from pydantic import ValidationError
from typer.testing import CliRunner

from digest.cli.dkim import dkim_commands
from digest.config import DkimSettings
from digest.edition.message import ListIdentity, MessageTemplate, Recipient, Sender
from digest.edition.render import slot_marker
from digest.errors import ConfigError, InvalidInputError
from digest.mail.dkim import (
    DkimSigner,
    GeneratedKey,
    build_signer,
    generate_key,
    load_ed25519_key,
    load_private_key,
)
from tests.support.dkim_dns import resolver

NONCE = "0123456789abcdef"
SELECTOR, DOMAIN = "sel", "example.hu"
UNSUBSCRIBE = (
    b"List-Unsubscribe: <https://budapestpost.example/u/daily/TOKEN>,"
    b" <mailto:unsubscribe+daily.TOKEN@budapestpost.example>\r\n"
)


def digest_template() -> MessageTemplate:
    greeting, unsubscribe = slot_marker(NONCE, "greeting"), slot_marker(NONCE, "unsubscribe")
    story = "A Duna-parton új híd épül; a főpolgármester szerint 2028-ra készül el. " * 4
    return MessageTemplate(
        sender=Sender(
            name="Budapest Post",
            address="news@budapestpost.example",
            reply_to="editors@budapestpost.example",
        ),
        identity=ListIdentity(
            slug="daily",
            name="Napi hírlevél",
            mail_domain="budapestpost.example",
            base_url="https://budapestpost.example",
        ),
        subject="Napi hírlevél: őszi árvíz, űrkutatás",
        html_body=f"<p>Kedves {greeting},</p>"
        + f"<p>{story}</p>" * 20
        + f'<p><a href="{unsubscribe}">Leiratkozás</a></p>',
        text_body=f"Kedves {greeting},\n\n" + f"{story}\n\n" * 20 + f"Leiratkozás: {unsubscribe}\n",
        nonce=NONCE,
        feedback_id="20260302:daily:digest:budapestpost",
    )


READER = Recipient(
    address="odon@example.org",
    name="Győri Ödön",
    greeting_name="Ödön",
    message_id="<daily.20260302.7.0c1d2e3f4a5b@budapestpost.example>",
    unsubscribe_token="TOKEN",
    preferences_token="PREFS",
)
SENT_AT = datetime(2026, 3, 2, 6, tzinfo=UTC)


def digest_message() -> bytes:
    return digest_template().personalise(READER, date=SENT_AT)


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> GeneratedKey:
    return generate_key(tmp_path_factory.mktemp("dkim"), selector=SELECTOR, domain=DOMAIN)


@pytest.fixture(scope="module")
def signer(key: GeneratedKey) -> DkimSigner:
    return DkimSigner(
        domain=DOMAIN, selector=SELECTOR, private_key=load_private_key(key.private_key_path)
    )


@pytest.fixture(scope="module")
def signed(signer: DkimSigner) -> bytes:
    return signer.sign(digest_message())


def signature_header(message: bytes) -> bytes:
    assert message.startswith(b"DKIM-Signature: ")
    found = re.match(rb"DKIM-Signature: .*?\r\n(?=\S)", message, re.DOTALL)
    assert found is not None
    return found[0]


def tags(message: bytes) -> dict[bytes, bytes]:
    value = signature_header(message).partition(b":")[2]
    found: dict[bytes, bytes] = parse_tag_value(re.sub(rb"\r\n[ \t]", b" ", value).strip())
    return found


def test_signed_message_verifies(signed: bytes, key: GeneratedKey) -> None:
    assert dkim.verify(signed, dnsfunc=resolver(key))


def test_signature_is_relaxed_rsa_sha256_without_length(signed: bytes) -> None:
    found = tags(signed)
    assert found[b"c"] == b"relaxed/relaxed"
    assert found[b"a"] == b"rsa-sha256"
    assert found[b"d"] == DOMAIN.encode() and found[b"s"] == SELECTOR.encode()
    assert b"l" not in found


# Every header a forger could add a copy of: each is signed once more than it occurs.
SIGNED = (
    "From", "To", "Subject", "Date", "Message-ID", "Reply-To", "Cc", "In-Reply-To", "References",
    "MIME-Version", "Content-Type", "List-Id", "List-Unsubscribe", "List-Unsubscribe-Post",
    "Feedback-ID", "Auto-Submitted",
)  # fmt: skip


def test_h_lists_every_header_once_more_than_it_occurs(signed: bytes) -> None:
    listed = [name.strip() for name in tags(signed)[b"h"].split(b":")]
    head = signed.partition(b"\r\n\r\n")[0].split(b"\r\n")
    for name in SIGNED:
        occurs = sum(line.lower().startswith(name.lower().encode() + b":") for line in head)
        assert listed.count(name.lower().encode()) == occurs + 1, name
    assert set(listed) == {name.lower().encode() for name in SIGNED}


@pytest.mark.parametrize("name", SIGNED, ids=SIGNED)
def test_a_header_prepended_in_transit_breaks_the_signature(
    signed: bytes, key: GeneratedKey, name: str
) -> None:
    value = {"Date": "Mon, 2 Mar 2026 07:00:00 +0000", "MIME-Version": "1.0"}.get(
        name, "<forged@evil.example>"
    )
    assert dkim.verify(signed, dnsfunc=resolver(key))
    assert not dkim.verify(f"{name}: {value}\r\n".encode() + signed, dnsfunc=resolver(key))


def test_output_is_smtp_ready(signed: bytes) -> None:
    header = signature_header(signed)
    assert signed.endswith(digest_message())
    assert header.endswith(b"\r\n")
    assert b"\n" not in signed.replace(b"\r\n", b"") and b"\r" not in signed.replace(b"\r\n", b"")
    lines = signed.split(b"\r\n")
    assert all(len(line) <= 998 for line in lines)
    folded = header.split(b"\r\n")[1:-1]
    assert folded and all(line[:1] in (b" ", b"\t") and line.strip() for line in folded)


def _add(line: bytes) -> Callable[[bytes], bytes]:
    return lambda message: message.replace(b"\r\n\r\n", b"\r\n" + line + b"\r\n\r\n", 1)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda m: m.replace(b"/u/daily/TOKEN>", b"/u/daily/TOKEM>", 1),
        _add(b"List-Unsubscribe: <https://evil.example/u>"),
        _add(b"From: Budapest Post <news@evil.example>"),
        _add(b"Subject: You have won"),
        lambda m: m.replace(b"Leiratkoz", b"Leiratkoy", 1),
        lambda m: m.replace(b"Subject: Napi", b"Subject: Mai", 1),
        lambda m: m.replace(b"\r\n--=_digest_", b"\r\nEgy sor.\r\n--=_digest_", 1),
    ],
    ids=[
        "list-unsubscribe-byte",
        "second-list-unsubscribe",
        "second-from",
        "second-subject",
        "body-byte",
        "subject-word",
        "body-line-added",
    ],
)
def test_tampering_breaks_the_signature(
    signed: bytes, key: GeneratedKey, tamper: Callable[[bytes], bytes]
) -> None:
    changed = tamper(signed)
    assert changed != signed
    assert not dkim.verify(changed, dnsfunc=resolver(key))


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (b">,\r\n <", b">, <"),  # List-Unsubscribe, folded after its comma, unfolded
        (b'multipart/alternative;\r\n boundary="', b'multipart/alternative; boundary="'),
        (b"Feedback-ID: ", b"Feedback-ID:   \r\n  "),
    ],
    ids=["unfold-list-unsubscribe", "unfold-content-type", "refold-feedback-id"],
)
def test_refolding_a_signed_header_keeps_it_valid(
    signed: bytes, key: GeneratedKey, before: bytes, after: bytes
) -> None:
    assert before in signed
    assert dkim.verify(signed.replace(before, after, 1), dnsfunc=resolver(key))


def test_dns_record_is_split_into_txt_strings(key: GeneratedKey) -> None:
    assert key.record_name == "sel._domainkey.example.hu"
    assert key.record.startswith("v=DKIM1; k=rsa; p=")
    assert len(key.chunks) > 1 and all(len(chunk) <= 255 for chunk in key.chunks)
    assert "".join(key.chunks) == key.record
    zone = key.dns_path.read_text(encoding="ascii")
    assert zone.startswith("sel._domainkey.example.hu. IN TXT (")
    assert re.findall(r'"([^"]*)"', zone) == list(key.chunks)


def test_generated_key_is_private_and_strong(key: GeneratedKey) -> None:
    assert stat.S_IMODE(key.private_key_path.stat().st_mode) == 0o600
    private = serialization.load_pem_private_key(key.private_key_path.read_bytes(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey) and private.key_size >= 2048


def test_generate_never_overwrites_a_key(key: GeneratedKey) -> None:
    before = key.private_key_path.read_bytes()
    with pytest.raises(ConfigError, match="exists"):
        generate_key(key.private_key_path.parent, selector=SELECTOR, domain=DOMAIN)
    assert key.private_key_path.read_bytes() == before


def _pem(private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.mark.parametrize(
    ("content", "mode", "message"),
    [
        ("strong", 0o644, "readable by others"),
        ("strong", 0o640, "readable by others"),
        (None, 0o600, "does not exist"),
        ("weak", 0o600, "1024 bits"),
        ("ec", 0o600, "not an RSA key"),
        ("garbage", 0o600, "not an unencrypted PEM private key"),
    ],
    ids=["world-readable", "group-readable", "missing", "1024-bit", "ec-key", "not-a-key"],
)
def test_loader_refuses(
    tmp_path: Path, key: GeneratedKey, content: str | None, mode: int, message: str
) -> None:
    contents = {
        "strong": key.private_key_path.read_bytes(),
        "weak": _pem(rsa.generate_private_key(public_exponent=65537, key_size=1024)),
        "ec": _pem(ec.generate_private_key(ec.SECP256R1())),
        "garbage": b"-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n",
    }
    path = tmp_path / "key.pem"
    if content is not None:
        path.write_bytes(contents[content])
        path.chmod(mode)
    with pytest.raises(ConfigError, match=message):
        load_private_key(path)


def test_loader_accepts_pkcs8_with_crlf(tmp_path: Path, key: GeneratedKey) -> None:
    # dkimpy's own PEM reader cannot read CRLF files; the loader hands it a form it can.
    private = serialization.load_pem_private_key(key.private_key_path.read_bytes(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    path = tmp_path / "crlf.pem"
    path.write_bytes(_pem(private).replace(b"\n", b"\r\n"))
    path.chmod(0o600)
    signer = DkimSigner(domain=DOMAIN, selector=SELECTOR, private_key=load_private_key(path))
    assert dkim.verify(signer.sign(digest_message()), dnsfunc=resolver(key))


def test_signer_checks_its_key_and_names_up_front(key: GeneratedKey) -> None:
    weak = _pem(rsa.generate_private_key(public_exponent=65537, key_size=1024))
    with pytest.raises(ConfigError, match="1024 bits"):
        DkimSigner(domain=DOMAIN, selector=SELECTOR, private_key=weak)
    with pytest.raises(ConfigError, match="selector"):
        DkimSigner(domain=DOMAIN, selector="../etc", private_key=key.private_key_path.read_bytes())


def test_signer_never_shows_its_key(signer: DkimSigner) -> None:
    assert "PRIVATE" not in repr(signer) and "sel" in repr(signer)


def test_a_message_without_from_is_refused(signer: DkimSigner) -> None:
    message = digest_message()
    without_from = re.sub(rb"From: [^\r]*\r\n", b"", message, count=1)
    with pytest.raises(InvalidInputError, match="From"):
        signer.sign(without_from)


def test_settings_turn_signing_on_only_with_a_key(key: GeneratedKey) -> None:
    assert build_signer(DkimSettings()) is None
    with pytest.raises(ValidationError, match="domain and selector"):
        DkimSettings(private_key=key.private_key_path)
    signer = build_signer(
        DkimSettings(domain=DOMAIN, selector=SELECTOR, private_key=key.private_key_path)
    )
    assert signer is not None and dkim.verify(signer.sign(digest_message()), dnsfunc=resolver(key))


def test_keygen_command_prints_the_record_and_the_key_path(tmp_path: Path) -> None:
    commands = typer.Typer()
    commands.add_typer(dkim_commands, name="dkim")  # as digest/cli/__init__.py registers it
    args = [
        "dkim",
        "keygen",
        "--selector",
        "dg2026",
        "--domain",
        "budapestpost.example",
        "--out",
        str(tmp_path),
    ]
    result = CliRunner().invoke(commands, args)
    assert result.exit_code == 0, result.output
    assert "dg2026._domainkey.budapestpost.example" in result.output
    assert '"v=DKIM1; k=rsa; p=' in result.output
    assert str(tmp_path / "dg2026.private.pem") in result.output
    assert "Example:" in CliRunner().invoke(commands, ["dkim", "keygen", "--help"]).output


@pytest.fixture(scope="module")
def ed_key(tmp_path_factory: pytest.TempPathFactory) -> GeneratedKey:
    folder = tmp_path_factory.mktemp("ed25519")
    return generate_key(folder, selector="sel-ed", domain=DOMAIN, ed25519_key=True)


def both_records(*keys: GeneratedKey) -> Callable[..., bytes]:
    records = {f"{key.record_name}.".encode(): key.record.encode() for key in keys}
    return lambda name, timeout=5: records[name]


@pytest.fixture(scope="module")
def dual(key: GeneratedKey, ed_key: GeneratedKey) -> bytes:
    signer = build_signer(
        DkimSettings(
            domain=DOMAIN,
            selector=SELECTOR,
            private_key=key.private_key_path,
            ed25519_selector="sel-ed",
            ed25519_private_key=ed_key.private_key_path,
        )
    )
    assert signer is not None
    return signer.sign(digest_message())


def verdicts(message: bytes, *keys: GeneratedKey) -> list[bool]:
    """dkimpy's verdict on each DKIM-Signature of the message, top first."""
    verifier = dkim.DKIM(message)
    count = sum(name.lower() == b"dkim-signature" for name, _ in verifier.headers)
    found = []
    for i in range(count):
        try:
            found.append(bool(verifier.verify(idx=i, dnsfunc=both_records(*keys))))
        except dkim.DKIMException:  # what dkim.verify() turns into False
            found.append(False)
    return found


def test_ed25519_adds_a_second_signature_that_verifies(
    dual: bytes, key: GeneratedKey, ed_key: GeneratedKey
) -> None:
    assert ed_key.record.startswith("v=DKIM1; k=ed25519; p=") and len(ed_key.chunks) == 1
    assert verdicts(dual, key, ed_key) == [True, True]
    first, second = tags(dual), tags(dual[len(signature_header(dual)) :])
    assert (first[b"a"], first[b"s"]) == (b"rsa-sha256", b"sel")
    assert (second[b"a"], second[b"s"]) == (b"ed25519-sha256", b"sel-ed")
    assert first[b"bh"] == second[b"bh"]
    assert first[b"h"].replace(b" ", b"") == second[b"h"].replace(b" ", b"")


@pytest.mark.parametrize(
    "tamper",
    [
        lambda m: m.replace(b"Leiratkoz", b"Leiratkoy", 1),
        lambda m: m.replace(b"\r\nReply-To:", b"\r\nReply-To: <x@evil.example>\r\nReply-To:", 1),
    ],
    ids=["body-byte", "second-reply-to"],
)
def test_tampering_breaks_both_signatures(
    dual: bytes, key: GeneratedKey, ed_key: GeneratedKey, tamper: Callable[[bytes], bytes]
) -> None:
    changed = tamper(dual)
    assert changed != dual
    assert verdicts(changed, key, ed_key) == [False, False]


def test_ed25519_needs_the_rsa_key_and_a_selector_of_its_own(
    key: GeneratedKey, ed_key: GeneratedKey
) -> None:
    with pytest.raises(ValidationError, match="ed25519_selector"):
        DkimSettings(
            domain=DOMAIN,
            selector=SELECTOR,
            private_key=key.private_key_path,
            ed25519_private_key=ed_key.private_key_path,
        )
    with pytest.raises(ValidationError, match="private_key"):
        DkimSettings(ed25519_selector="e", ed25519_private_key=ed_key.private_key_path)
    rsa_pem = key.private_key_path.read_bytes()
    ed_pem = ed_key.private_key_path.read_bytes()
    with pytest.raises(ConfigError, match="selector of its own"):
        DkimSigner(
            domain=DOMAIN,
            selector=SELECTOR,
            private_key=rsa_pem,
            ed25519_selector=SELECTOR,
            ed25519_key=ed_pem,
        )
    with pytest.raises(ConfigError, match="not an Ed25519 key"):
        DkimSigner(
            domain=DOMAIN, selector=SELECTOR, private_key=rsa_pem, ed25519_selector="e",
            ed25519_key=rsa_pem,
        )  # fmt: skip
    with pytest.raises(ConfigError, match="not an RSA key"):
        load_private_key(ed_key.private_key_path)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\r\n",
        b"\r\n\r\n\r\n",
        b"one line",
        b"tabs\tand  double  spaces \t\r\nnext line   \r\n",
        b"trailing empty lines\r\n\r\n\r\n",
        b" leading space\r\n\r\nafter an empty line\r\n",
        b"=C5=91 quoted-printable=\r\n soft break\r\n",
        b"   runs\r\nat  both    ends      \r\n\r\n",
    ],
    ids=[
        "empty",
        "crlf",
        "empty-lines",
        "no-crlf",
        "whitespace",
        "trailing",
        "inner",
        "qp",
        "runs",
    ],
)
def test_body_canonicalisation_matches_dkimpy(body: bytes) -> None:
    from dkim.canonicalization import Relaxed

    from digest.mail.canonical import relaxed_body

    sent = body if not body or body.endswith(b"\r\n") else body + b"\r\n"  # as SMTP carries it
    assert relaxed_body(body) == Relaxed.canonicalize_body(sent)


def test_an_empty_body_signs_as_erratum_3133_says(signer: DkimSigner, key: GeneratedKey) -> None:
    head = digest_message().partition(b"\r\n\r\n")[0]
    signed = signer.sign(head + b"\r\n\r\n")
    assert tags(signed)[b"bh"] == b"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="  # sha256("")
    assert dkim.verify(signed, dnsfunc=resolver(key))


def test_signing_from_several_threads_at_once(signer: DkimSigner, key: GeneratedKey) -> None:
    # The sender signs in its connection threads; one key object serves them all.
    from concurrent.futures import ThreadPoolExecutor

    messages = [digest_message().replace(b"/u/daily/TOKEN", b"/u/daily/T%d" % i) for i in range(8)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(signer.sign, messages))
    assert all(
        result.endswith(message) and dkim.verify(result, dnsfunc=resolver(key))
        for result, message in zip(results, messages, strict=True)
    )


def test_keygen_command_makes_an_ed25519_key(tmp_path: Path) -> None:
    commands = typer.Typer()
    commands.add_typer(dkim_commands, name="dkim")
    args = ["dkim", "keygen", "--selector", "e2026", "--domain", "example.hu", "--ed25519"]
    result = CliRunner().invoke(commands, [*args, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert '"v=DKIM1; k=ed25519; p=' in result.output
    assert stat.S_IMODE((tmp_path / "e2026.private.pem").stat().st_mode) == 0o600
    assert load_ed25519_key(tmp_path / "e2026.private.pem")
