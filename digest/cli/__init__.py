"""The `digest` command: a thin layer over `digest.operations.publisher`.

A user mistake becomes one line on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from digest.cli.articles import articles_commands
from digest.cli.bounces import bounces
from digest.cli.context import Context, context, err, out
from digest.cli.dkim import dkim_commands
from digest.cli.edition import edition_commands
from digest.cli.editions import preview, resume, retry, send, status
from digest.cli.editors import editors_commands
from digest.cli.run import run, worker
from digest.cli.stats import stats
from digest.cli.subscribers import subscribers_commands
from digest.cli.web import unsubscribe_mail, web
from digest.errors import DigestError

commands = typer.Typer(
    name="digest",
    help="Newsletter digests for news publishers: articles in, standards-correct email out.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@commands.callback()
def _main(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="TOML config file (default: $DIGEST_CONFIG or config/digest.toml).",
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log each step.")] = False,
) -> None:
    """Newsletter digests for news publishers.

    Example: digest --config config/digest.toml send --list daily
    """
    ctx.obj = Context(config)
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    # A send's progress lines are INFO: shown by default when output is not a terminal.
    logging.getLogger("digest.cli.progress").setLevel(logging.INFO)


@commands.command()
def init(
    ctx: typer.Context,
    seed: Annotated[
        bool, typer.Option("--seed", help="Also load the sample data in seeds/.")
    ] = False,
) -> None:
    """Create or upgrade the database schema and register the configured lists.

    Example: digest init --seed
    """
    from digest.operations.production import ensure_secret

    publisher = context(ctx).publisher
    revision, report = publisher.init(seed=seed, now=datetime.now(UTC))
    out.print(f"schema at revision {revision}")
    written = ensure_secret(publisher.settings)
    if written is not None:
        out.print(
            f"wrote a new unsubscribe secret to {written} (mode 0600): keep it, and keep it out "
            "of version control",
            markup=False,
        )
    if report is not None:
        out.print(
            f"seeds: {report.articles} new articles, {report.subscribers} new subscribers, "
            f"{report.subscriptions} new subscriptions"
        )
        for line in report.rejected:
            err.print(f"skipped {line}")


@commands.command("config")
def show_config(ctx: typer.Context) -> None:
    """Print the effective configuration (file plus environment), secrets masked.

    Example: DIGEST_SMTP__PORT=2525 digest config
    """
    from digest.config import masked
    from digest.config.sending import signing_state

    settings = context(ctx).settings
    out.print_json(json.dumps(masked(settings), ensure_ascii=False))
    err.print(signing_state(settings.dkim), markup=False)  # on stderr: stdout stays JSON


@commands.command()
def capture(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default: capture.host).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port to listen on (default: capture.port).")
    ] = None,
    directory: Annotated[
        Path | None,
        typer.Option("--dir", help="Folder for .eml files (default: capture.directory)."),
    ] = None,
) -> None:
    """Run the capture SMTP server: every message becomes an .eml file; Ctrl-C stops it.

    Example: digest capture --port 8025 --dir var/mail
    """
    from digest.mail.capture import Captured, CaptureServer
    from digest.operations.inbound import unsubscribe_hook

    everything = context(ctx).settings
    settings = everything.capture
    folder = directory or settings.directory
    # Mail to the mailto: unsubscribe address is acted on, as a real inbound handler would.
    unsubscribe = unsubscribe_hook(everything)

    def show(item: Captured) -> None:
        out.print(f"{item.path}  {item.sender} -> {', '.join(item.recipients)}  {item.subject}")
        unsubscribe(item)

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with CaptureServer(
        folder, host=host or settings.host, port=port or settings.port, on_message=show
    ) as server:
        out.print(f"capturing mail on {server.host}:{server.port} into {folder}/ (Ctrl-C to stop)")
        stop.wait()
    out.print("capture server stopped")


for command in (send, resume, retry, preview, status, stats):
    commands.command()(command)
commands.add_typer(articles_commands, name="articles")
commands.add_typer(dkim_commands, name="dkim")
commands.add_typer(edition_commands, name="edition")
commands.add_typer(editors_commands, name="editors")
commands.add_typer(subscribers_commands, name="subscribers")
commands.command("bounces")(bounces)
commands.command("run")(run)
commands.command("worker")(worker)
commands.command()(web)
commands.command("unsubscribe-mail")(unsubscribe_mail)


def main() -> None:
    """Console entry point: run the command; a DigestError becomes one line on stderr."""
    try:
        commands()
    except DigestError as exc:
        err.print(f"digest: error: {exc}", soft_wrap=True)
        sys.exit(exc.exit_code)
