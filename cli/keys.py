"""`vpa keys create|list|revoke`: the admin's API keys (with the admin key, ADMIN_API_KEY)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from cli.client import Target, VpaClient
from cli.errors import guarded
from cli.render import keys_table

keys_app = typer.Typer(help="API keys (admin).", no_args_is_help=True)


def _client(ctx: typer.Context) -> VpaClient:
    target: Target = ctx.ensure_object(Target)
    return VpaClient(target)


@keys_app.command()
@guarded
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="who or what uses the key", show_default=False)],
    rate_limit: Annotated[
        int | None, typer.Option(help="job creations a minute (its own limit)")
    ] = None,
    max_active: Annotated[
        int | None, typer.Option(help="jobs queued or processing at once (its own limit)")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="print only the key")] = False,
) -> None:
    """Make a key. It is shown this once: vpa keeps only its hash."""
    body: dict[str, Any] = {"name": name}
    if rate_limit is not None:
        body["rate_limit_per_minute"] = rate_limit
    if max_active is not None:
        body["max_active_jobs"] = max_active
    with _client(ctx) as client:
        made = client.create_key(body)
    if quiet:
        typer.echo(made["key"])
        return
    console = Console()
    console.print(keys_table([made]))
    console.print(Text.assemble("key (shown this once): ", (str(made["key"]), "bold")))


@keys_app.command("list")
@guarded
def list_keys(ctx: typer.Context) -> None:
    """Every key, newest first (their first characters, never the key)."""
    with _client(ctx) as client:
        keys = client.list_keys()
    Console().print(keys_table(keys))


@keys_app.command()
@guarded
def revoke(ctx: typer.Context, key_id: Annotated[str, typer.Argument(help="the key's id")]) -> None:
    """Revoke a key: refused from the next request on."""
    with _client(ctx) as client:
        key = client.revoke_key(key_id)
    Console().print(f"key {key['id']} ({key['name']}) revoked", markup=False, highlight=False)
