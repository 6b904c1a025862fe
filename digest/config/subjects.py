"""Subject templates: the one plain Jinja2 environment both the config check and rendering use.

Subjects are header text, so they are never HTML-escaped, and every name must exist. A trial
render with the names the renderer passes finds a broken template when the config loads rather
than at send time.
"""

from __future__ import annotations

from datetime import date

from jinja2 import Environment, StrictUndefined, TemplateError

SUBJECT_SAMPLE: dict[str, object] = {
    "list_name": "Daily",
    "site_name": "Budapest Post",
    "date_label": "Thursday 3 December 2026",
    "date": date(2026, 12, 3),
    "lead_title": "Lead story",
    "article_count": 12,
}


def subject_environment() -> Environment:
    """A plain (never escaping) environment in which every name a subject uses must exist."""
    return Environment(autoescape=False, undefined=StrictUndefined)


_CHECK = subject_environment()


def check_subject(template: str) -> str:
    """Refuse a subject template that would not render with the names the renderer passes."""
    try:
        _CHECK.from_string(template).render(**SUBJECT_SAMPLE)
    except TemplateError as exc:
        raise ValueError(f"not a usable subject template: {exc}") from exc
    return template
