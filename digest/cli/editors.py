"""`digest editors ...`: the accounts that may sign in to the desk (`digest web`, /desk)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Annotated

import typer

from digest.cli.context import context, out
from digest.errors import InvalidInputError

editors_commands = typer.Typer(
    help="Editors: the accounts that sign in to the desk at /desk of `digest web`.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

PasswordStdin = Annotated[
    bool,
    typer.Option(
        "--password-stdin", help="Read the password from the first line of stdin (scripts)."
    ),
]


def _password(from_stdin: bool) -> str:
    """The new password: stdin's first line, or asked twice at the terminal (never echoed)."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif not sys.stdin.isatty():
        raise InvalidInputError("no terminal to ask for a password: use --password-stdin")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        raise InvalidInputError("the password is empty")
    return password


@editors_commands.command("add")
def add(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="The editor's address; they sign in with it.")],
    password_stdin: PasswordStdin = False,
) -> None:
    """Create a desk account (password hashed with argon2id)."""
    from digest.operations.editors import add_editor

    shared = context(ctx)
    password = _password(password_stdin)
    address = add_editor(
        shared.store, email, password, settings=shared.settings.desk, now=datetime.now(UTC)
    )
    out.print(f"editor {address} added; they sign in at /desk of `digest web`")


@editors_commands.command("password")
def password(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="The editor's address.")],
    password_stdin: PasswordStdin = False,
) -> None:
    """Set a new password: the editor's sessions end and a lock-out is lifted."""
    from digest.operations.editors import set_password

    shared = context(ctx)
    set_password(shared.store, email, _password(password_stdin), settings=shared.settings.desk)
    out.print(f"new password set for {email}; their sessions have ended")


@editors_commands.command("list")
def list_editors(ctx: typer.Context) -> None:
    """Every editor, with the last sign-in and any lock."""
    editors = context(ctx).store.all_editors()
    if not editors:
        out.print("no editors yet: digest editors add EMAIL")
    now = datetime.now(UTC)
    for editor in editors:
        seen = editor.last_sign_in_at
        line = f"{editor.email}  last sign-in: {seen:%Y-%m-%d %H:%M} UTC" if seen else editor.email
        if editor.locked_until is not None and editor.locked_until > now:
            line += f"  locked until {editor.locked_until:%H:%M} UTC"
        out.print(line)


@editors_commands.command("remove")
def remove(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="The editor's address.")],
) -> None:
    """Delete a desk account; its sessions end with it."""
    context(ctx).store.remove_editor(email)
    out.print(f"editor {email} removed")
