"""DKIM signing (RFC 6376) of finished messages, and the keys and DNS records it needs.

`DkimSigner.sign` runs last, over the exact bytes handed to SMTP (EMAIL.md #39): nothing may
re-serialise a message after it. The choices follow EMAIL.md #34-#38: rsa-sha256 with a key of at
least 2048 bits, c=relaxed/relaxed, no l=, and an explicit h= list that names every header a
forger would add a copy of once more than it occurs (absent ones once), so that a Reply-To, a
second From or any other such header prepended in transit breaks the signature (RFC 6376 8.15).
An Ed25519 key (RFC 8463) adds a second signature over the same bytes. Keys live in files only
their owner can read (#41).

Signing runs in the sender's connection threads: OpenSSL does the RSA and Ed25519 work with the
GIL released (cryptography >= 50), so the signatures of two connections run on two cores.
"""

from __future__ import annotations

import os
import re
import time
from base64 import b64encode
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from hashlib import sha256
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa, utils

from digest.config import DkimSettings
from digest.errors import ConfigError, InvalidInputError
from digest.mail.bodyhash import body_plan
from digest.mail.canonical import cached_relaxed_field, relaxed_body, relaxed_field, split_message

MIN_KEY_BITS = 2048
_TXT_CHUNK = 255  # one character-string of a TXT record (RFC 6376 3.6.2.2)
_FOLD = 76  # the longest line of a DKIM-Signature header we write
# Signed in this order, each once more than it occurs (see EMAIL.md #34-#35 for why each one).
_SIGNED = (
    b"from", b"to", b"subject", b"date", b"message-id", b"reply-to", b"cc", b"in-reply-to",
    b"references", b"mime-version", b"content-type", b"list-id", b"list-unsubscribe",
    b"list-unsubscribe-post", b"feedback-id", b"auto-submitted",
)  # fmt: skip
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DNS_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_PKCS1 = padding.PKCS1v15()
_PREHASHED = utils.Prehashed(hashes.SHA256())


def _check_name(kind: str, value: str) -> None:
    # Both end up in a DNS name, and the selector also in a file name: no slashes, no spaces.
    if not _DNS_NAME.fullmatch(value) or len(value) > 253:
        raise ConfigError(
            f"DKIM {kind} {value!r} is not a DNS name such as 'dg2026' or 'example.hu'"
        )


def _private_key(pem: bytes, source: str) -> object:
    try:
        return serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        # TypeError: the key is encrypted; the signer has nobody to ask for a passphrase.
        raise ConfigError(f"{source} is not an unencrypted PEM private key: {exc}") from exc


def _rsa_key(pem: bytes, source: str) -> rsa.RSAPrivateKey:
    key = _private_key(pem, source)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError(f"{source} is not an RSA key (DKIM here signs with rsa-sha256)")
    if key.key_size < MIN_KEY_BITS:
        raise ConfigError(
            f"{source} has {key.key_size} bits; DKIM keys need at least {MIN_KEY_BITS}"
        )
    return key


def _ed25519_key(pem: bytes, source: str) -> ed25519.Ed25519PrivateKey:
    key = _private_key(pem, source)
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise ConfigError(f"{source} is not an Ed25519 key (k=ed25519, RFC 8463)")
    return key


def _read_key_file(path: Path) -> bytes:
    """The bytes of a key file, refused unless only its owner can read it: a leaked key lets
    anyone sign mail as the publisher (EMAIL.md #41)."""
    try:
        mode = path.stat().st_mode
        if mode & 0o077:
            raise ConfigError(
                f"DKIM private key {path} is readable by others (mode {mode & 0o777:04o}); "
                f"run: chmod 600 {path}"
            )
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise ConfigError(f"DKIM private key {path} does not exist") from exc
    except OSError as exc:
        raise ConfigError(f"DKIM private key {path} cannot be read: {exc.strerror}") from exc


def load_private_key(path: Path) -> bytes:
    """The PEM of the RSA key at `path`, refused unless private and of at least 2048 bits."""
    pem = _read_key_file(path)
    _rsa_key(pem, f"DKIM private key {path}")
    return pem


def load_ed25519_key(path: Path) -> bytes:
    """The PEM of the Ed25519 key at `path`, refused unless only its owner can read it."""
    pem = _read_key_file(path)
    _ed25519_key(pem, f"DKIM private key {path}")
    return pem


@lru_cache(maxsize=64)
def _plan(names: tuple[bytes, ...]) -> tuple[bytes, tuple[int, ...]]:
    """For one layout of header names (the same for every message of an edition): the h= list,
    each signed header once more than it occurs, and which fields it hashes in which order: each
    name takes its instances from the bottom up, and the extra listing adds nothing (RFC 6376
    5.4.2) except that a copy added later is hashed and breaks the signature."""
    listed = [name for name in _SIGNED for _ in range(names.count(name) + 1)]
    positions: dict[bytes, list[int]] = {}
    for index, name in enumerate(names):
        positions.setdefault(name, []).append(index)
    order = []
    for name in listed:
        left = positions.get(name)
        if left:
            order.append(left.pop())
    return b":".join(listed), tuple(order)


def _fold(head: bytes, tags: Iterable[bytes]) -> bytes:
    """`head` and then the tags, folded before a tag (or a colon of h=) that would make a line
    longer than 76."""
    lines = head.split(b"\r\n")
    for tag in tags:
        for index, piece in enumerate(tag.split(b":")):
            word = piece if index == 0 else b":" + piece
            if len(lines[-1]) + 1 + len(word) > _FOLD:
                lines.append(b"\t" + word)
            else:
                lines[-1] += (b" " if index == 0 else b"") + word
    return b"\r\n".join(lines)


@lru_cache(maxsize=64)
def _fixed_tags(algorithm: bytes, domain: bytes, selector: bytes, listed: bytes) -> bytes:
    """The start of the header, the same for every message of an edition: folded once."""
    tags = (b"v=1;", b"a=" + algorithm + b";", b"c=relaxed/relaxed;", b"d=" + domain + b";")
    return _fold(b"DKIM-Signature:", (*tags, b"s=" + selector + b";", b"h=" + listed + b";"))


@lru_cache(maxsize=64)
def _split_fixed(fixed_head: bytes) -> list[tuple[bytes, bytes]]:
    """The fields of an edition's fixed header, split once (callers only read the list)."""
    return split_message(fixed_head)[0]


@dataclass(frozen=True, slots=True)
class _Key:
    algorithm: bytes  # the a= tag
    selector: bytes
    sign: Callable[[bytes], bytes] = field(repr=False)  # SHA-256 of the header data -> b=


@dataclass(frozen=True, slots=True, kw_only=True)
class DkimSigner:
    """Signs finished messages for one domain; build it once, sign per subscriber.

    `private_key` is the RSA key's PEM; `ed25519_key`, with its own `ed25519_selector`, adds an
    ed25519-sha256 signature beside the rsa-sha256 one (receivers use the one they know).
    """

    domain: str
    selector: str
    private_key: bytes = field(repr=False)
    ed25519_selector: str = ""
    ed25519_key: bytes | None = field(default=None, repr=False)
    # The keys parsed and checked once, so a bad key fails at start-up, not per subscriber.
    _keys: tuple[_Key, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_name("domain", self.domain)
        _check_name("selector", self.selector)
        rsa_key = _rsa_key(self.private_key, "the DKIM private key")
        keys = [
            _Key(
                b"rsa-sha256",
                self.selector.encode("ascii"),
                lambda digest: rsa_key.sign(digest, _PKCS1, _PREHASHED),
            )
        ]
        if self.ed25519_key is not None:
            _check_name("Ed25519 selector", self.ed25519_selector)
            if self.ed25519_selector == self.selector:
                raise ConfigError("the Ed25519 key needs a selector of its own")
            ed_key = _ed25519_key(self.ed25519_key, "the DKIM Ed25519 key")
            keys.append(_Key(b"ed25519-sha256", self.ed25519_selector.encode("ascii"), ed_key.sign))
        object.__setattr__(self, "_keys", tuple(keys))

    def sign(self, message: bytes, *, now: float | None = None) -> bytes:
        """`message` (CRLF) with its DKIM-Signature header(s) prepended, folded with CRLF.

        `now` (seconds since the epoch, default the clock) is the t= tag.
        """
        fields, body = split_message(message)
        body_hash = b64encode(sha256(relaxed_body(body)).digest())
        return self._signatures(fields, body_hash, now) + message

    def sign_parts(
        self,
        head: bytes,
        fixed_head: bytes,
        segments: tuple[bytes, ...],
        holes: Sequence[bytes],
        *,
        now: float | None = None,
    ) -> bytes:
        """The message `head` + `fixed_head` (the fields every message of the edition has, and
        the empty line) + body, signed as `sign` would, where the body is the fixed `segments`
        with the per-subscriber `holes` between them. What repeats is split, canonicalised and
        hashed once per edition variant, not per message."""
        fields = split_message(head)[0] + _split_fixed(fixed_head)
        plan = body_plan(segments)
        body = plan.join(holes)
        signatures = self._signatures(fields, plan.body_hash(holes, body), now)
        return b"".join((signatures, head, fixed_head, body))

    def _signatures(
        self, fields: list[tuple[bytes, bytes]], body_hash: bytes, now: float | None
    ) -> bytes:
        """The DKIM-Signature header(s) for these header fields and body hash."""
        names = tuple(name for name, _ in fields)
        if b"from" not in names:
            raise InvalidInputError("cannot DKIM-sign the message: it has no From header")
        listed, order = _plan(names)
        signed = b"".join([cached_relaxed_field(fields[index][1]) for index in order])
        stamp = b"t=%d;" % int(time.time() if now is None else now)
        domain = self.domain.encode("ascii")
        headers = []
        for key in self._keys:
            fixed = _fixed_tags(key.algorithm, domain, key.selector, listed)
            unsigned = _fold(fixed, (stamp, b"bh=" + body_hash + b";", b"b="))
            # The header itself is hashed last, canonical, with b= empty and no CRLF (3.7).
            canonical = relaxed_field(unsigned + b"\r\n")[:-2]
            value = b64encode(key.sign(sha256(signed + canonical).digest()))
            room = max(_FOLD - len(unsigned) + unsigned.rfind(b"\n") + 1, 0)
            chunks = [value[:room]] + [value[i : i + 72] for i in range(room, len(value), 72)]
            headers.append(unsigned + b"\r\n\t".join(chunks) + b"\r\n")
        return b"".join(headers)


def build_signer(settings: DkimSettings) -> DkimSigner | None:
    """The signer the settings ask for (reading the key files now), or None if signing is off."""
    if settings.private_key is None:
        return None
    ed25519_file = settings.ed25519_private_key
    return DkimSigner(
        domain=settings.domain,
        selector=settings.selector,
        private_key=load_private_key(settings.private_key),
        ed25519_selector=settings.ed25519_selector,
        ed25519_key=load_ed25519_key(ed25519_file) if ed25519_file else None,
    )


@dataclass(frozen=True, slots=True)
class GeneratedKey:
    """A new key pair on disk and the DNS TXT record that publishes its public half."""

    private_key_path: Path
    dns_path: Path
    record_name: str
    record: str
    chunks: tuple[str, ...]  # `record` in pieces of at most 255 characters, for one TXT RR

    def zone_line(self) -> str:
        """The record as a zone-file entry, chunks quoted; receivers join them without spaces."""
        quoted = "\n    ".join(f'"{chunk}"' for chunk in self.chunks)
        return f"{self.record_name}. IN TXT (\n    {quoted} )\n"


def generate_key(
    directory: Path, *, selector: str, domain: str, ed25519_key: bool = False
) -> GeneratedKey:
    """Create an RSA 2048 key (or, with `ed25519_key`, an Ed25519 one) as
    `<selector>.private.pem` (mode 0600, never overwritten) and its DNS record as
    `<selector>.dns.txt`: one selector per key makes rotation a DNS change."""
    _check_name("selector", selector)
    _check_name("domain", domain)
    key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
    if ed25519_key:
        key = ed25519.Ed25519PrivateKey.generate()
        raw = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        record = f"v=DKIM1; k=ed25519; p={b64encode(raw).decode('ascii')}"
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=MIN_KEY_BITS)
        spki = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        record = f"v=DKIM1; k=rsa; p={b64encode(spki).decode('ascii')}"
    generated = GeneratedKey(
        private_key_path=directory / f"{selector}.private.pem",
        dns_path=directory / f"{selector}.dns.txt",
        record_name=f"{selector}._domainkey.{domain}",
        record=record,
        chunks=tuple(record[i : i + _TXT_CHUNK] for i in range(0, len(record), _TXT_CHUNK)),
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        # O_EXCL: overwriting a published key would break every message signed with it.
        fd = os.open(generated.private_key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
        generated.dns_path.write_text(generated.zone_line(), encoding="ascii")
    except FileExistsError as exc:
        raise ConfigError(f"{generated.private_key_path} exists; choose a new selector") from exc
    except OSError as exc:
        raise ConfigError(f"cannot write the DKIM key in {directory}: {exc.strerror}") from exc
    return generated
