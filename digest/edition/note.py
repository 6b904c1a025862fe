"""The editor's note: a short Markdown intro of one edition, as safe HTML and as plain text."""

from __future__ import annotations

from dataclasses import dataclass

from digest.errors import InvalidInputError

NOTE_LIMIT = 2000  # characters of Markdown: an intro paragraph or two, not an article
_TAGS = {"p", "a", "strong", "em", "b", "i", "br", "ul", "ol", "li"}


@dataclass(frozen=True, slots=True)
class EditorNote:
    """The note as the editor wrote it, and the HTML it shows as (already cleaned by nh3)."""

    markdown: str
    html: str

    @property
    def text(self) -> str:
        """The plain-text part shows the Markdown itself: it was made to read as text."""
        return self.markdown


def editor_note(markdown: str) -> EditorNote:
    """Check and convert a note; raw HTML in it is dropped and links must be http(s) or mailto."""
    source = markdown.replace("\r\n", "\n").strip()
    if not source:
        raise InvalidInputError("the editor's note is empty (to remove it, use --clear)")
    if len(source) > NOTE_LIMIT:
        raise InvalidInputError(
            f"the editor's note has {len(source)} characters; at most {NOTE_LIMIT} fit an intro"
        )
    if "\x00" in source:
        raise InvalidInputError("the editor's note contains a NUL character")
    import nh3
    from markdown_it import MarkdownIt

    rendered = MarkdownIt("commonmark", {"html": False}).render(source)
    cleaned = nh3.clean(
        rendered,
        tags=_TAGS,
        attributes={"a": {"href"}},
        url_schemes={"https", "http", "mailto"},
        link_rel=None,
    )
    return EditorNote(markdown=source, html=cleaned.strip())
