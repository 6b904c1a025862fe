"""`digest dkim ...`: DKIM key housekeeping, a thin layer over `digest.mail.dkim`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

dkim_commands = typer.Typer(
    help="DKIM keys: create a signing key and the DNS record that publishes it.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@dkim_commands.command()
def keygen(
    selector: Annotated[
        str, typer.Option("--selector", help="New selector, e.g. dg2026; one per key.")
    ],
    domain: Annotated[
        str, typer.Option("--domain", help="Signing domain (d=), normally the From domain.")
    ],
    out: Annotated[Path, typer.Option("--out", help="Folder for the key and record files.")],
    ed25519: Annotated[
        bool,
        typer.Option(
            "--ed25519", help="An Ed25519 key for the optional second signature (RFC 8463)."
        ),
    ] = False,
) -> None:
    """Create an RSA 2048 key (mode 0600) and print the DNS TXT record to publish for it.

    Writes OUT/SELECTOR.private.pem and OUT/SELECTOR.dns.txt (a zone-file entry) and never
    overwrites a key. Publish the record, then set [dkim] domain, selector and private_key;
    for an --ed25519 key, ed25519_selector and ed25519_private_key.

    Example: digest dkim keygen --selector dg2026 --domain example.hu --out /etc/digest/mail/dkim
    """
    from digest.mail.dkim import generate_key

    key = generate_key(out, selector=selector, domain=domain, ed25519_key=ed25519)
    # typer.echo, not rich: a wrapped record could not be pasted into a DNS form.
    typer.echo(f"DNS record name:  {key.record_name}")
    typer.echo("DNS record type:  TXT")
    typer.echo("DNS record value: " + " ".join(f'"{chunk}"' for chunk in key.chunks))
    typer.echo(f"private key:      {key.private_key_path}")
    typer.echo(f"zone-file entry:  {key.dns_path}")
