"""Pinned IPFS objects that nothing on chain references: ``medvault gc``."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from medvault.cli.app import App, pass_app
from medvault.cli.options import json_anywhere

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["COMMANDS", "gc"]


@click.command()
@click.option("--unpin", is_flag=True, help="Unpin the orphans (after a prompt, unless --yes).")
@click.option("--yes", is_flag=True, help="With --unpin: unpin without asking.")
@json_anywhere
@pass_app
def gc(app: App, unpin: bool, yes: bool) -> None:
    """List the objects the IPFS node pins that nothing on chain references (no record pointer,
    key bundle, KeysShared bundle or keeper re-escrow of this deployment), such as those a
    killed `record add` or seeding run left; with --unpin, unpin them.

    A pinned directory (seeding pins one per batch) is kept while any file in it is referenced,
    and listed as partly referenced. Run --unpin while nothing writes to the deployment: an
    object whose transaction is still on its way looks orphaned. The node is taken to serve
    this deployment alone (and the deployments this home replaced on its chain).
    """
    from medvault.orphans import find_orphans, replaced_chains, unpin_orphans

    if yes and not unpin:
        raise click.UsageError("--yes only applies with --unpin")
    if unpin and not yes and not sys.stdin.isatty():
        raise click.UsageError("--unpin asks before unpinning; add --yes to unpin without a prompt")
    chain = app.client.chain
    earlier = replaced_chains(chain, app.home)  # deploy --replace keeps them: their objects too
    report = find_orphans(chain, app.client.ipfs, earlier=earlier)
    if unpin and report.orphans:
        prompt = f"unpin {len(report.orphans)} orphaned object{'s' * (len(report.orphans) != 1)}?"
        if yes or click.confirm(prompt, err=True):
            unpin_orphans(chain, app.client.ipfs, report, earlier=earlier)

    def show() -> None:
        for pin in report.orphans:
            click.echo(f"orphan    {pin.describe()}")
        for pin in report.partial:
            click.echo(f"kept      {pin.describe()}: kept for those, its other {len(pin.unreferenced)} stay pinned")
        click.echo(
            f"{report.pins} pins: {len(report.referenced)} referenced, {len(report.partial)} partly referenced, "
            f"{len(report.orphans)} orphaned; {len(report.unpinned)} unpinned"
            + ("" if unpin or not report.orphans else " (unpin them with --unpin)")
        )

    app.emit(report.to_json(), show)


COMMANDS: Sequence[click.Command] = [gc]
