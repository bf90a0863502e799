"""``medvault keeper``: choose a patient's key-release keepers, list them and their releases, run one."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from medvault.cli.app import App, pass_app
from medvault.cli.options import ACCOUNT, account_option, json_anywhere, patient_option

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["COMMANDS", "keeper"]


@click.group()
def keeper() -> None:
    """Key-release keepers: hold t-of-n shares of a patient's record keys and release them to
    grantees while consent holds on chain, posting a receipt for every release."""


@keeper.command("set")
@click.argument("keepers", nargs=-1, type=ACCOUNT)
@click.option(
    "--threshold", "-t", type=click.IntRange(0, 16), required=True, help="How many keepers release a key together."
)
@account_option
@json_anywhere
@pass_app
def keeper_set(app: App, keepers: tuple[str, ...], threshold: int, account: str) -> None:
    """Choose the signing patient's KEEPERS (names or addresses, registered; none with
    --threshold 0 removes them). Records written from then on escrow their key with them, and
    the keys of existing records are re-escrowed for them (removed keepers keep the shares they
    were given: t of them together can still open the records of their time)."""
    app.emit_tx(app.client.set_keepers(app.unlock(account), [app.address(k) for k in keepers], threshold))


@keeper.command("list")
@patient_option
@json_anywhere
@pass_app
def keeper_list(app: App, patient: str) -> None:
    """Show a patient's keepers, the threshold and the URL each announced."""
    keepers = app.client.keepers_of(app.address(patient))

    def show() -> None:
        if not keepers.keepers:
            click.echo(f"{keepers.patient} has no keepers")
            return
        click.echo(f"{keepers.threshold} of {len(keepers.keepers)} keepers release a key of {keepers.patient}:")
        for address in keepers.keepers:
            click.echo(f"  {address}  {keepers.urls.get(address) or '(no URL announced)'}")
        if keepers.escrow_cid:
            click.echo(f"earlier records re-escrowed for them in {keepers.escrow_cid}")

    app.emit(keepers.to_json(), show)


@keeper.command("releases")
@patient_option
@json_anywhere
@pass_app
def keeper_releases(app: App, patient: str) -> None:
    """List the key-release receipts (KeyReleased events) of a patient's keepers."""
    releases = app.client.releases(app.address(patient))

    def show() -> None:
        if not releases:
            click.echo("no releases")
        for r in releases:
            when = dt.datetime.fromtimestamp(r.released_at, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
            click.echo(
                f"{when}  record {r.index:>3} to {r.grantee} by keeper {r.keeper} (decided at block {r.decided_at})"
            )

    app.emit([vars(r) for r in releases], show)


@keeper.command("run")
@account_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8640, show_default=True, help="Port (0: any free one).")
@click.option("--announce", metavar="URL", help="Announce URL on chain at start, unless it is already the latest.")
@click.option(
    "--state", type=click.Path(file_okay=False, path_type=Path), help="Journal folder [default: HOME/keepers/ACCOUNT]."
)
@click.option(
    "--batch-seconds", type=click.FloatRange(min=0.05), default=2.0, show_default=True, help="Receipt batching period."
)
@click.option(
    "--confirmations",
    type=click.IntRange(0, 1000),
    help="Decide on the block this many below the head [default: 0 on the local chain 31337, where anvil's head is "
    "final at once; 2 elsewhere, so a short reorg cannot undo a revoke the keeper has seen].",
)
@click.option(
    "--max-lag",
    type=float,
    metavar="SECONDS",
    help="Refuse when the block decided on is older than this [default: off on 31337, whose idle head is "
    "legitimately old; 120 elsewhere]; 0 turns it off.",
)
@click.option(
    "--second-rpc", metavar="URL", help="A second Ethereum endpoint that must hold the same block and decide the same."
)
@click.option(
    "--receipt-bucket",
    type=click.IntRange(min=0),
    default=3600,
    show_default=True,
    metavar="SECONDS",
    help="One receipt per reader, record and this much chain time (0: one per distinct signed request).",
)
@click.option(
    "--rate-limit", type=click.IntRange(min=1), default=600, show_default=True, help="Requests per reader per window."
)
@click.option(
    "--rate-window", type=click.FloatRange(min=1), default=3600.0, show_default=True, help="The rate window, seconds."
)
@json_anywhere
@pass_app
def keeper_run(
    app: App, account: str, host: str, port: int, announce: str | None, state: Path | None, batch_seconds: float,
    confirmations: int | None, max_lag: float | None, second_rpc: str | None, receipt_bucket: int, rate_limit: int,
    rate_window: float,
) -> None:  # fmt: skip
    """Serve key requests as keeper ACCOUNT until interrupted (SIGINT or SIGTERM).

    POST /v1/key-shares releases this keeper's share of a record key to a reader who signed an
    EIP-712 KeyRequest, after checking consent on chain at one settled block (head minus
    --confirmations, no older than --max-lag, agreed by --second-rpc if given); receipts carry
    the reader's signature and that block, and are posted in batches.
    """
    import logging
    import signal
    import threading

    from medvault.keeper import KeeperService
    from medvault.keeper.settled import Settlement

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    wallet = app.unlock(account)
    folder = state or app.home / "keepers" / account
    settlement = Settlement.for_chain(
        app.client.chain.chain_id, confirmations=confirmations, max_lag=max_lag, second_rpc=second_rpc
    )
    service = KeeperService(
        wallet, app.client, folder, host=host, port=port, batch_seconds=batch_seconds, announce=announce,
        settlement=settlement, receipt_bucket=receipt_bucket, rate_limit=rate_limit, rate_window=rate_window,
    ).start()  # fmt: skip
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    app.emit(
        {"keeper": service.address, "url": service.url, "state": str(folder)},
        f"keeper {service.address} serving at {service.url} (journal {folder}); Ctrl-C stops it",
    )
    sys.stdout.flush()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        service.stop()


COMMANDS: Sequence[click.Command] = [keeper]
