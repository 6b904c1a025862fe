"""DKIM signing (RFC 6376) of finished messages, and the keys and DNS records it needs.

`DkimSigner.sign` runs last, over the exact bytes handed to SMTP (EMAIL.md #39): nothing may
re-serialise a message after it. The choices follow EMAIL.md #34-#38: rsa-sha256 with a key of at
least 2048 bits, c=relaxed/relaxed, no l=, an explicit h= list that includes List-Unsubscribe-Post
and Feedback-ID, and the headers a forger would add a second copy of signed once more than they
occur. The key lives in a file only its owner can read (#41).
"""

from __future__ import annotations

import os
import re
from base64 import b64encode
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from digest.config import DkimSettings
from digest.errors import ConfigError, InvalidInputError

MIN_KEY_BITS = 2048
_TXT_CHUNK = 255  # one character-string of a TXT record (RFC 6376 3.6.2.2)
# Signed in this order when present; see EMAIL.md #34-#35 for why each one.
_SIGNED = (
    b"from", b"to", b"subject", b"date", b"message-id", b"mime-version", b"content-type",
    b"reply-to", b"list-id", b"list-unsubscribe", b"list-unsubscribe-post", b"feedback-id",
    b"auto-submitted",
)  # fmt: skip
# Listed once more than they occur, so a copy added in transit breaks the signature (RFC 6376 8.15).
_OVERSIGNED = frozenset(
    (b"from", b"to", b"subject", b"date", b"list-unsubscribe", b"list-unsubscribe-post")
)
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DNS_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")


def _check_name(kind: str, value: str) -> None:
    # Both end up in a DNS name, and the selector also in a file name: no slashes, no spaces.
    if not _DNS_NAME.fullmatch(value) or len(value) > 253:
        raise ConfigError(
            f"DKIM {kind} {value!r} is not a DNS name such as 'dg2026' or 'example.hu'"
        )


def _rsa_key(pem: bytes, source: str) -> rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        # TypeError: the key is encrypted; the signer has nobody to ask for a passphrase.
        raise ConfigError(f"{source} is not an unencrypted PEM private key: {exc}") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError(f"{source} is not an RSA key (DKIM here signs with rsa-sha256)")
    if key.key_size < MIN_KEY_BITS:
        raise ConfigError(
            f"{source} has {key.key_size} bits; DKIM keys need at least {MIN_KEY_BITS}"
        )
    return key


def _pkcs1_pem(key: rsa.RSAPrivateKey) -> bytes:
    # LF-only PKCS#1 PEM: dkimpy's own PEM reader finds the base64 between "--\n" and "\n--".
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def load_private_key(path: Path) -> bytes:
    """The PEM of the DKIM key at `path`, refused unless only its owner can read it and it has
    at least 2048 bits: a leaked key lets anyone sign mail as the publisher (EMAIL.md #37, #41)."""
    try:
        mode = path.stat().st_mode
        if mode & 0o077:
            raise ConfigError(
                f"DKIM private key {path} is readable by others (mode {mode & 0o777:04o}); "
                f"run: chmod 600 {path}"
            )
        pem = path.read_bytes()
    except FileNotFoundError as exc:
        raise ConfigError(f"DKIM private key {path} does not exist") from exc
    except OSError as exc:
        raise ConfigError(f"DKIM private key {path} cannot be read: {exc.strerror}") from exc
    return _pkcs1_pem(_rsa_key(pem, f"DKIM private key {path}"))


def _header_list(names: Iterable[bytes]) -> list[bytes]:
    """The h= list: each wanted header as often as it occurs, the oversigned ones once more."""
    counts = Counter(name.lower() for name in names)
    listed: list[bytes] = []
    for name in _SIGNED:
        if counts[name]:
            listed += [name] * (counts[name] + (name in _OVERSIGNED))
    return listed


@dataclass(frozen=True, slots=True, kw_only=True)
class DkimSigner:
    """Signs finished messages for one domain and selector; build it once, sign per subscriber."""

    domain: str
    selector: str
    private_key: bytes = field(repr=False)
    # The key checked and rewritten once, so a bad key fails at start-up, not per subscriber.
    _pem: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_name("domain", self.domain)
        _check_name("selector", self.selector)
        object.__setattr__(
            self, "_pem", _pkcs1_pem(_rsa_key(self.private_key, "the DKIM private key"))
        )

    def sign(self, message: bytes) -> bytes:
        """`message` (CRLF) with its DKIM-Signature header prepended, folded with CRLF.

        dkimpy writes t= from the system clock; it offers no way to pass `now`.
        """
        # dkimpy takes the key only as PEM and re-reads it per call: about 0.2 ms of the ~12 ms a
        # signature costs here; nearly all the rest is its pure-Python RSA, so that is not worth
        # reaching into its internals for.
        import dkim  # with its DNS resolver a big import: paid only by commands that sign

        try:
            signer = dkim.DKIM(message, signature_algorithm=b"rsa-sha256", linesep=b"\r\n")
            header: bytes = signer.sign(
                self.selector.encode("ascii"),
                self.domain.encode("ascii"),
                self._pem,
                canonicalize=(b"relaxed", b"relaxed"),
                include_headers=_header_list(name for name, _ in signer.headers),
                length=False,
            )
        except dkim.DKIMException as exc:
            raise InvalidInputError(f"cannot DKIM-sign the message: {exc}") from exc
        return header + message


def build_signer(settings: DkimSettings) -> DkimSigner | None:
    """The signer the settings ask for (reading the key file now), or None if signing is off."""
    if settings.private_key is None:
        return None
    return DkimSigner(
        domain=settings.domain,
        selector=settings.selector,
        private_key=load_private_key(settings.private_key),
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


def generate_key(directory: Path, *, selector: str, domain: str) -> GeneratedKey:
    """Create an RSA 2048 key as `<selector>.private.pem` (mode 0600, never overwritten) and its
    DNS record as `<selector>.dns.txt`: one selector per key makes rotation a DNS change."""
    _check_name("selector", selector)
    _check_name("domain", domain)
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
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        # O_EXCL: overwriting a published key would break every message signed with it.
        fd = os.open(generated.private_key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(_pkcs1_pem(key))
        generated.dns_path.write_text(generated.zone_line(), encoding="ascii")
    except FileExistsError as exc:
        raise ConfigError(f"{generated.private_key_path} exists; choose a new selector") from exc
    except OSError as exc:
        raise ConfigError(f"cannot write the DKIM key in {directory}: {exc.strerror}") from exc
    return generated
