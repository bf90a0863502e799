"""``medvault relay``: send one signed consent change from a file (``relay FILE``), or serve a
relayer that sends those a browser posts (``relay serve``); either way the account pays the gas."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import click

from medvault.cli.app import App, pass_app
from medvault.cli.options import account_option, json_anywhere
from medvault.client.consent_sig import SignedConsent

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["COMMANDS", "DefaultGroup", "relay"]


class DefaultGroup(click.Group):
    """A group whose ``default`` command runs when the first argument names none of its commands
    (``medvault relay FILE ...`` is ``medvault relay send FILE ...``)."""

    def __init__(self, *args: Any, default: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.default = default

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ctx.help_option_names):
            args = [self.default, *args]
        return super().parse_args(ctx, args)


@click.group(
    cls=DefaultGroup, default="send", subcommand_metavar="FILE [--signature HEX] | serve [OPTIONS]", name="relay"
)
def relay() -> None:
    """Send signed consent changes; the account pays the gas.

    \b
    medvault relay FILE [--signature HEX] --account NAME [--json]
        sends the signed change in FILE (what --sign-only prints; '-' for stdin)
    medvault relay serve --account NAME [--port P] [--rate N] [--allow-origin ORIGIN]
        serves POST /v1/consent, for a browser portal to send its users' signed changes
    """


@relay.command("send")
@click.argument("file", type=click.File("rb"))
@click.option(
    "--signature",
    metavar="HEX",
    help="The wallet's signature of FILE, when FILE is the typed data alone (as --unsigned prints it).",
)
@account_option
@json_anywhere
@pass_app
def relay_send(app: App, file: Any, signature: str | None, account: str) -> None:
    """Send a signed consent change from FILE ('-' for stdin); the account pays the gas.

    FILE holds {"typedData", "signature"} (what --sign-only prints), or the typed data alone
    with --signature: 65 bytes (v 27/28 or 0/1) or 64 (EIP-2098), from any wallet. `medvault
    relay FILE` is the same command."""
    signed = SignedConsent.from_json(file.read(), signature)
    app.emit_tx(app.client.relay(app.unlock(account), signed))


def _origin(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    for value in values:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc or value != f"{parts.scheme}://{parts.netloc}":
            raise click.BadParameter(
                f"{value!r} is not an origin: give scheme://host[:port], like https://portal.example"
            )
    return values


@relay.command("serve")
@account_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="Port (0: any free one).")
@click.option(
    "--rate", type=click.IntRange(min=1), default=10, show_default=True, help="Changes per signer per minute."
)
@click.option(
    "--allow-origin",
    "origins",
    multiple=True,
    callback=_origin,
    metavar="ORIGIN",
    help="A web origin whose pages may call the relayer (CORS; repeatable; default: none).",
)
@json_anywhere
@pass_app
def relay_serve(app: App, account: str, host: str, port: int, rate: int, origins: tuple[str, ...]) -> None:
    """Relay signed consent changes over HTTP from ACCOUNT until interrupted (SIGINT or SIGTERM).

    POST /v1/consent takes {"typedData": ..., "signature": "0x..."} (what --sign-only prints);
    a change the chain would refuse is answered 422 with the refusal in words and costs
    nothing; one it takes is sent and answered with its transaction once mined. GET /v1/health
    names the relayer, its chain and its balance.
    """
    import logging
    import signal
    import threading

    from medvault.relayer import RelayerService

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    wallet, client = app.unlock(account), app.client
    service = RelayerService(wallet, client, host=host, port=port, rate=rate, allow_origins=origins).start()
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        app.emit(
            {"url": service.url, "relayer": service.address, "chainId": client.chain.chain_id},
            f"relayer {service.address} serving chain {client.chain.chain_id} at {service.url}; Ctrl-C stops it",
            indent=None,
        )
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
    finally:
        service.stop()


COMMANDS: Sequence[click.Command] = [relay]
