"""``medvault portal``: the browser portal for this home's deployment, or a whole demo stack."""

from __future__ import annotations

import json
import signal
import threading
from typing import Any

import click

from medvault.cli.app import App, pass_app
from medvault.cli.options import json_anywhere

__all__ = ["COMMANDS", "portal"]


def _serve_until_stopped() -> None:
    """Blocks until SIGINT or SIGTERM."""
    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    stopped.wait()


def _metamask(chain_id: int, rpc_url: str, account: str = "an account funded on that chain") -> str:
    return (
        "To use your own wallet (MetaMask: Settings > Networks > Add a network manually):\n"
        f"  network name  medvault local\n  RPC URL       {rpc_url}\n  chain ID      {chain_id}\n"
        f"  currency      ETH\nthen connect with {account}."
    )


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to serve on (loopback by default).")
@click.option("--port", type=click.IntRange(0, 65535), default=8600, show_default=True, help="Port (0: a free one).")
@click.option("--relayer-url", help="A `medvault relay serve` the portal sends signed consent to.")
@click.option(
    "--demo",
    is_flag=True,
    help="Start a fresh local chain, IPFS, keepers and demo data (removed on exit), with a development wallet.",
)
@json_anywhere
@pass_app
def portal(app: App, host: str, port: int, relayer_url: str | None, demo: bool) -> None:
    """Serve the portal: records, consent and research requests in the browser.

    The page talks only to this server, which forwards chain reads, IPFS objects and signed
    consent; keys and plaintext stay in the browser. Stop it with Ctrl-C.
    """
    if demo:
        from medvault.dev.portal_stack import demo_stack

        click.echo("starting a local chain, IPFS, keepers and demo data...", err=True)
        with demo_stack(host=host, port=port) as stack:
            summary = stack.summary()
            _announce(app, summary, _demo_text(summary))
            _serve_until_stopped()
        return
    from medvault.portal import Portal

    chain = app.client.chain
    server = Portal(chain.deployment, app.rpc_url, app.ipfs_api, relayer_url=relayer_url, host=host, port=port)
    server.start()
    try:
        summary = {"portal": server.url, "chainId": chain.deployment.chain_id, "rpcUrl": app.rpc_url}
        _announce(app, summary, f"portal: {server.url}\n\n" + _metamask(chain.deployment.chain_id, app.rpc_url))
        _serve_until_stopped()
    finally:
        server.stop()


def _announce(app: App, summary: dict[str, Any], text: str) -> None:
    if app.as_json:
        click.echo(json.dumps(summary), nl=True)
    else:
        click.echo(text)
    click.get_text_stream("stdout").flush()


def _demo_text(s: dict[str, Any]) -> str:
    accounts = "\n".join(f"  {name:<11} {address}" for name, address in s["accounts"].items())
    return (
        f"portal: {s['portal']}\n\n"
        "Open it and choose the development wallet to act as any demo account:\n"
        f"{accounts}\n"
        f"Signed consent is relayed by {s['relayer']}.\n"
        f"Every demo passphrase is {s['passphrase']!r}; alice's encrypted key backup is {s['aliceBackup']}.\n\n"
        + _metamask(
            s["chainId"],
            s["rpcUrl"],
            f"a demo account, imported as a JSON file (Import account > JSON file: {s['home']}/keystores/alice.json)",
        )
        + "\n\nCtrl-C stops everything and removes its state."
    )


COMMANDS = [portal]
