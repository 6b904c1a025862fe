"""The DKIM body hash (bh=) of a message built from fixed segments and per-subscriber holes.

Every message of an edition has the same body but for a few holes (greeting, unsubscribe and
preferences links). Relaxed canonicalisation never looks past a line end, so the whole lines of
the fixed segments are canonicalised once per edition, the SHA-256 state after the fixed prefix
is kept and copied, and per message only the lines that touch a hole are canonicalised: what is
hashed is still exactly the canonical form of the bytes sent (`join`), so the signature covers
what SMTP carries (EMAIL.md #39).
"""

from __future__ import annotations

from base64 import b64encode
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from hashlib import sha256
from typing import Any

from digest.edition.message import interleave
from digest.mail.canonical import relaxed_body, relaxed_lines

# A step is canonical bytes, hashed as they are, or the raw pieces (bytes) and hole numbers
# (int) of the lines around a hole, joined and canonicalised per message.
_Step = bytes | tuple[bytes | int, ...]


@dataclass(frozen=True, slots=True)
class BodyPlan:
    """How to hash one layout of segments; built once per edition variant by `body_plan`."""

    segments: tuple[bytes, ...]
    start: Any = None  # the SHA-256 state after the fixed prefix; None: hash the whole body
    steps: tuple[_Step, ...] = ()

    def join(self, holes: Sequence[bytes]) -> bytes:
        """The body: segment, hole, segment, ... segment."""
        return interleave(self.segments, holes)

    def body_hash(self, holes: Sequence[bytes], body: bytes) -> bytes:
        """bh= for `body`, which is `join(holes)`."""
        if self.start is None:
            return b64encode(sha256(relaxed_body(body)).digest())
        state = self.start.copy()
        for step in self.steps:
            if type(step) is bytes:
                state.update(step)
            else:
                raw = [holes[piece] if type(piece) is int else piece for piece in step]
                state.update(relaxed_lines(b"".join(raw)))  # type: ignore[arg-type]
        return b64encode(state.digest())


@lru_cache(maxsize=64)
def body_plan(segments: tuple[bytes, ...]) -> BodyPlan:
    """The plan for bodies of these fixed segments with a hole between each two.

    A body whose last segment has no complete non-blank line after its last hole gets no
    shortcut: stripping empty lines at the end (RFC 6376 3.4.4) could then reach into a hole.
    """
    steps: list[_Step] = []
    group: list[bytes | int] = []  # the lines touching the current hole, not yet closed
    last_index = len(segments) - 1
    for index, segment in enumerate(segments):
        start = 0
        if index:
            group.append(index - 1)
            first = segment.find(b"\r\n")
            if first < 0:  # the hole's line goes on into the next segment
                if index == last_index:
                    return BodyPlan(segments)
                group.append(segment)
                continue
            start = first + 2
            group.append(segment[:start])
            steps.append(tuple(group))
            group = []
        if index == last_index:
            tail = relaxed_body(segment[start:])
            if not tail:
                return BodyPlan(segments)
            steps.append(tail)
            break
        found = segment.rfind(b"\r\n", start)
        end = start if found < 0 else found + 2
        if end > start:
            steps.append(relaxed_lines(segment[start:end]))
        if segment[end:]:
            group.append(segment[end:])
    state = sha256()
    if steps and isinstance(steps[0], bytes):
        state.update(steps[0])
        del steps[0]
    return BodyPlan(segments, state, tuple(steps))
