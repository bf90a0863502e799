"""The ``medvault`` command line.

Every command takes ``--json`` (one JSON document on stdout) and ``--help``. Errors print one
line naming what is wrong and exit with status 1 (2 for usage errors). Endpoints default to the
node that ``medvault node up`` started for this home, else to anvil's and Kubo's usual ports.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from eth_utils.address import is_address, to_checksum_address

from medvault.accounts import Keystore, Wallet
from medvault.chain import Chain, TxResult, connect, deploy
from medvault.client import Medvault
from medvault.client.consent_sig import ConsentChange, SignedConsent
from medvault.crypto import KeySuite
from medvault.dev.node import LocalNode
from medvault.errors import ConfigurationError, MedvaultError
from medvault.index import EventIndex, query_group
from medvault.ipfs import IpfsClient
from medvault.model import Category, Purpose, Role

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["main"]

DEFAULT_RPC_URL = "http://127.0.0.1:8545"
DEFAULT_IPFS_API = "http://127.0.0.1:5001"


@dataclass
class App:
    home: Path
    rpc_url_option: str | None
    ipfs_api_option: str | None
    as_json: bool
    _client: Medvault | None = field(default=None, repr=False)

    @property
    def node(self) -> LocalNode:
        return LocalNode(self.home / "node")

    @property
    def rpc_url(self) -> str:
        info = self.node.status()
        return self.rpc_url_option or (info.rpc_url if info else DEFAULT_RPC_URL)

    @property
    def ipfs_api(self) -> str:
        info = self.node.status()
        return self.ipfs_api_option or (info.ipfs_api if info else DEFAULT_IPFS_API)

    @property
    def keystore(self) -> Keystore:
        return Keystore(self.home)

    @property
    def client(self) -> Medvault:
        if self._client is None:
            self._client = Medvault(Chain.open(self.rpc_url, self.home), IpfsClient(self.ipfs_api))
        return self._client

    def unlock(self, name: str) -> Wallet:
        return self.keystore.unlock(name, _prompt_passphrase)

    def address(self, name_or_address: str) -> str:
        """An account name from the keystore, or a 0x address."""
        if is_address(name_or_address):
            return to_checksum_address(name_or_address)
        return to_checksum_address(self.keystore.address(name_or_address))

    def emit(self, data: Any, text: str | Callable[[], None]) -> None:
        """Prints ``data`` as JSON with --json, else ``text`` (a string or a printer)."""
        if self.as_json:
            click.echo(json.dumps(data, indent=2, default=str))
        elif callable(text):
            text()
        else:
            click.echo(text)


pass_app = click.make_pass_decorator(App)


def _prompt_passphrase(name: str) -> str:
    if not sys.stdin.isatty():
        raise ConfigurationError(f"no passphrase for {name!r}: set MEDVAULT_PASSPHRASE (no terminal to prompt on)")
    return str(click.prompt(f"Passphrase for {name}", hide_input=True))


def _tx(result: TxResult) -> dict[str, Any]:
    return {"action": result.action, "tx": result.tx_hash, "gas_used": result.gas_used, "block": result.block_number}


def _tx_line(result: TxResult) -> str:
    return f"{result.action}: tx {result.tx_hash} (block {result.block_number}, gas {result.gas_used:,})"


account_option = click.option("--account", "-a", required=True, help="Keystore account that signs.")
json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")


class MedvaultGroup(click.Group):
    """Turns MedvaultError into a one-line message and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MedvaultError as exc:
            app = ctx.find_object(App)
            if app and app.as_json:
                click.echo(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
            else:
                click.echo(f"error: {exc}", err=True)
            ctx.exit(1)


@click.group(cls=MedvaultGroup)
@click.option(
    "--home",
    type=click.Path(path_type=Path),
    default=lambda: os.environ.get("MEDVAULT_HOME", str(Path.home() / ".medvault")),
    show_default="$MEDVAULT_HOME or ~/.medvault",
    help="Keystores, deployments and local node state.",
)
@click.option("--rpc-url", envvar="MEDVAULT_RPC_URL", help="Ethereum JSON-RPC endpoint.")
@click.option("--ipfs-api", envvar="MEDVAULT_IPFS_API", help="Kubo RPC API endpoint.")
@json_option
@click.version_option(package_name="medvault")
@click.pass_context
def cli(ctx: click.Context, home: Path, rpc_url: str | None, ipfs_api: str | None, as_json: bool) -> None:
    """Patient-owned medical records: consent on Ethereum, encrypted records in IPFS."""
    ctx.obj = App(home.expanduser(), rpc_url, ipfs_api, as_json)


def _json_anywhere(f: Callable[..., Any]) -> Callable[..., Any]:
    """Lets --json also follow the subcommand (``medvault record list --json``)."""

    def set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
        if value:
            ctx.ensure_object(App).as_json = True

    return click.option("--json", is_flag=True, expose_value=False, callback=set_json, help="Print JSON.")(f)


# -- accounts ---------------------------------------------------------------------------------


@cli.group()
def account() -> None:
    """Encrypted keystores (passphrase from MEDVAULT_PASSPHRASE[_NAME] or a prompt)."""


@account.command("new")
@click.argument("name")
@click.option("--import-key", is_flag=True, help="Import an existing private key (asked for, hidden).")
@_json_anywhere
@pass_app
def account_new(app: App, name: str, import_key: bool) -> None:
    """Create keystore NAME with a fresh key (or an imported one)."""
    from medvault.accounts import passphrase_from_env

    passphrase = passphrase_from_env(name)
    if passphrase is None:
        if not sys.stdin.isatty():
            raise ConfigurationError("no passphrase: set MEDVAULT_PASSPHRASE (no terminal to prompt on)")
        passphrase = click.prompt(f"New passphrase for {name}", hide_input=True, confirmation_prompt=True)
    key = None
    if import_key:
        raw = click.prompt("Private key (hex)", hide_input=True).strip().removeprefix("0x")
        try:
            key = bytes.fromhex(raw)
        except ValueError:
            raise ConfigurationError("the private key is not hex") from None
    address = app.keystore.create(name, str(passphrase), key)
    app.emit({"name": name, "address": address}, f"created {name}: {address}")


@account.command("list")
@_json_anywhere
@pass_app
def account_list(app: App) -> None:
    """List keystore accounts and addresses."""
    accounts = app.keystore.addresses()
    app.emit(accounts, "\n".join(f"{n:<16} {a}" for n, a in accounts.items()) or "no accounts")


@account.command("fund")
@click.argument("name")
@click.option("--eth", default=100.0, show_default=True, help="Balance to set.")
@_json_anywhere
@pass_app
def account_fund(app: App, name: str, eth: float) -> None:
    """Set an account's balance on a local anvil chain (development only)."""
    address = app.address(name)
    w3 = connect(app.rpc_url)
    response = w3.provider.make_request("anvil_setBalance", [address, hex(int(eth * 10**18))])  # type: ignore[arg-type]
    if "error" in response:
        raise ConfigurationError(f"{app.rpc_url} is not an anvil node: {response['error']}")
    app.emit({"address": address, "eth": eth}, f"{name} ({address}) now holds {eth} ETH")


# -- local node -------------------------------------------------------------------------------


@cli.group()
def node() -> None:
    """A local anvil chain and offline Kubo node, on loopback, with state kept in --home."""


@node.command("up")
@click.option("--chain-port", default=8545, show_default=True)
@click.option("--ipfs-port", default=5001, show_default=True)
@_json_anywhere
@pass_app
def node_up(app: App, chain_port: int, ipfs_port: int) -> None:
    """Start anvil and Kubo (whichever is not running yet)."""
    info = LocalNode(app.home / "node", chain_port=chain_port, ipfs_port=ipfs_port).up()
    app.emit(
        {"rpc_url": info.rpc_url, "ipfs_api": info.ipfs_api, "state": str(app.home / "node")},
        f"chain  {info.rpc_url}  (anvil, pid {info.chain.pid})\n"
        f"ipfs   {info.ipfs_api}  (Kubo offline, pid {info.ipfs.pid})\n"
        f"state  {app.home / 'node'}",
    )


@node.command("status")
@_json_anywhere
@pass_app
def node_status(app: App) -> None:
    """Show the endpoints and whether each process runs."""
    info, running = app.node.status(), app.node.running()
    data = {"rpc_url": info.rpc_url if info else None, "ipfs_api": info.ipfs_api if info else None, **running}
    app.emit(
        data,
        f"chain  {data['rpc_url']}  {'running' if running['chain'] else 'stopped'}\n"
        f"ipfs   {data['ipfs_api']}  {'running' if running['ipfs'] else 'stopped'}",
    )


@node.command("down")
@_json_anywhere
@pass_app
def node_down(app: App) -> None:
    """Stop the processes `node up` started (state is kept)."""
    stopped = app.node.down()
    app.emit({"stopped": stopped}, f"stopped: {', '.join(stopped) or 'nothing was running'}")


# -- deployment and participants ----------------------------------------------------------------


@cli.command("deploy")
@account_option
@click.option(
    "--key-suite",
    type=click.Choice(["x25519", "mlkem768-x25519"]),
    default="x25519",
    show_default=True,
    help="HPKE suite every participant of this deployment uses.",
)
@_json_anywhere
@pass_app
def deploy_cmd(app: App, account: str, key_suite: str) -> None:
    """Deploy the contracts; the account becomes admin and first accreditor."""
    suite = KeySuite.X25519 if key_suite == "x25519" else KeySuite.MLKEM768_X25519
    wallet = app.unlock(account)
    deployment, results = deploy(connect(app.rpc_url), wallet, app.home, suite)
    app.emit(
        {"deployment": deployment.model_dump(mode="json"), "transactions": [_tx(r) for r in results]},
        "\n".join(_tx_line(r) for r in results) + f"\nrecorded in {deployment.path(app.home, deployment.chain_id)}",
    )


@cli.command()
@account_option
@_json_anywhere
@pass_app
def register(app: App, account: str) -> None:
    """Publish the account's encryption public key."""
    result = app.client.register(app.unlock(account))
    app.emit(_tx(result), _tx_line(result))


@cli.command()
@click.argument("participant")
@click.option("--role", type=click.Choice(["provider", "researcher"]), required=True)
@click.option("--withdraw", is_flag=True, help="Withdraw the accreditation instead.")
@account_option
@_json_anywhere
@pass_app
def accredit(app: App, participant: str, role: str, withdraw: bool, account: str) -> None:
    """Accredit PARTICIPANT (name or address) as a provider or researcher."""
    result = app.client.accredit(app.unlock(account), app.address(participant), Role[role.upper()], withdraw=withdraw)
    app.emit(_tx(result), _tx_line(result))


# -- encryption keys --------------------------------------------------------------------------

_SUITES = {"x25519": KeySuite.X25519, "mlkem768-x25519": KeySuite.MLKEM768_X25519}


@cli.group()
def keys() -> None:
    """Encryption keys: derived from your wallet's signature, so unlocking the keystore (or a
    browser wallet holding the account) restores them; rotate to a new one at any time."""


@keys.command("show")
@account_option
@_json_anywhere
@pass_app
def keys_show(app: App, account: str) -> None:
    """Show the account's key epoch, suite and public key, and whether the chain holds that key."""
    info = app.client.key_info(app.unlock(account))
    if info.matches_chain:
        state = "matches the published key"
    elif info.registered:
        state = "does NOT match the published key (`medvault register` publishes it)"
    else:
        state = "not registered (`medvault register`)"
    epoch = "-" if info.epoch is None else str(info.epoch)
    app.emit(
        info.to_json(),
        f"account  {info.account}\nsuite    {info.suite.name}\nepoch    {epoch}\n"
        f"key      0x{info.public_key.hex()}\nchain    {state}",
    )


@keys.command("rotate")
@account_option
@_json_anywhere
@pass_app
def keys_rotate(app: App, account: str) -> None:
    """Publish the account's next key and re-wrap its records' keys for it.

    Records added from then on are wrapped for the new key only. Grants are unchanged.
    """
    rotation = app.client.rotate_key(app.unlock(account))
    app.emit(
        {
            "account": rotation.account,
            "old_epoch": rotation.old_epoch,
            "new_epoch": rotation.new_epoch,
            "public_key": "0x" + rotation.public_key.hex(),
            "keys_cid": rotation.keys_cid,
            "rewrapped": rotation.rewrapped,
            "transactions": [_tx(r) for r in rotation.transactions],
        },
        "\n".join(_tx_line(r) for r in rotation.transactions)
        + f"\nkey epoch {rotation.old_epoch} -> {rotation.new_epoch}; "
        + f"{len(rotation.rewrapped)} record key(s) re-wrapped"
        + (f" in {rotation.keys_cid}" if rotation.keys_cid else ""),
    )


@keys.command("typed-data")
@click.option("--suite", type=click.Choice(list(_SUITES)), default="x25519", show_default=True, help="HPKE suite.")
@click.option("--epoch", type=click.IntRange(min=0), default=0, show_default=True, help="Key epoch.")
@_json_anywhere
@pass_app
def keys_typed_data(app: App, suite: str, epoch: int) -> None:
    """Print the EIP-712 document a wallet signs (eth_signTypedData_v4) to derive its key.

    keccak256 of the signature is the key's seed. The domain has no chain id: one key per
    account and epoch on every chain.
    """
    from medvault.crypto import encryption_key_typed_data

    click.echo(json.dumps(encryption_key_typed_data(_SUITES[suite], epoch), indent=2))


# -- records ----------------------------------------------------------------------------------


@cli.group()
def record() -> None:
    """Encrypted records: add, list, get."""


@record.command("add")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--patient", "-p", required=True, help="Patient name or address.")
@click.option("--category", "-c", help="laboratory, imaging, medications, conditions, immunizations, notes.")
@click.option("--content-type", help="Media type (default: FHIR JSON for .json files).")
@account_option
@_json_anywhere
@pass_app
def record_add(
    app: App, file: Path, patient: str, category: str | None, content_type: str | None, account: str
) -> None:
    """Encrypt FILE, store it in IPFS and append its pointer to the patient's log.

    A FHIR R4 JSON resource is validated first, and its category follows from its type.
    """
    data = file.read_bytes()
    if file.suffix == ".json" and content_type in (None, "application/fhir+json"):
        from medvault.fhir import category_for, validate_resource

        try:
            resource = json.loads(data)
        except json.JSONDecodeError as exc:
            raise ConfigurationError(f"{file} is not valid JSON: {exc}") from None
        validate_resource(resource)
        category = category or category_for(resource)
        content_type = "application/fhir+json"
    if category is None:
        raise ConfigurationError("--category is needed for a file that is not a FHIR JSON resource")
    receipt = app.client.add_record(
        app.unlock(account),
        app.address(patient),
        data,
        Category.parse(category),
        content_type=content_type or "application/octet-stream",
        name=file.name,
    )
    p = receipt.pointer
    app.emit(
        {"record": p.to_json(), "transaction": _tx(receipt.tx), "readers": receipt.readers},
        f"record {p.index} of {p.patient} ({p.category.name.lower()})\n"
        f"  cid   {p.cid}\n  keys  {p.keys_cid}\n  {_tx_line(receipt.tx)}\n"
        f"  key wrapped for {', '.join(receipt.readers)}",
    )


@record.command("list")
@click.option("--patient", "-p", required=True, help="Patient name or address.")
@_json_anywhere
@pass_app
def record_list(app: App, patient: str) -> None:
    """List a patient's records (the hash chain is checked against the chain's head)."""
    pointers = app.client.records(app.address(patient))

    def show() -> None:
        if not pointers:
            click.echo("no records")
        for p in pointers:
            when = dt.datetime.fromtimestamp(p.timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M")
            click.echo(f"{p.index:>4}  {when}  {p.category.name.lower():<13} {p.author}  {p.cid}")

    app.emit([p.to_json() for p in pointers], show)


@record.command("get")
@click.argument("index", type=int)
@click.option("--patient", "-p", required=True, help="Patient name or address.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write the payload here.")
@account_option
@_json_anywhere
@pass_app
def record_get(app: App, index: int, patient: str, output: Path | None, account: str) -> None:
    """Fetch, verify and decrypt record INDEX of a patient."""
    rec = app.client.read_record(app.unlock(account), app.address(patient), index)
    if output:
        output.write_bytes(rec.data)
    data: dict[str, Any] = {"record": rec.pointer.to_json(), "content_type": rec.content_type, "name": rec.name}
    if rec.content_type.endswith("json") and not output:
        data["content"] = json.loads(rec.data)
    if app.as_json:
        app.emit(data, "")
    elif output:
        click.echo(f"record {index}: {len(rec.data)} bytes of {rec.content_type} written to {output}")
    else:
        sys.stdout.buffer.write(rec.data + (b"\n" if not rec.data.endswith(b"\n") else b""))


# -- consent ----------------------------------------------------------------------------------

patient_option = click.option("--patient", "-p", help="Patient name or address (default: the signing account).")
sign_only_option = click.option(
    "--sign-only",
    is_flag=True,
    help="Do not send: print the EIP-712 typed data and signature, for anyone to `medvault relay`.",
)
scope_option = click.option(
    "--scope",
    "-s",
    default="all",
    show_default=True,
    help="Comma-separated categories (laboratory, imaging, medications, conditions, immunizations, notes) or all.",
)


def _scopes(value: str) -> frozenset[Category]:
    if value.strip().lower() == "all":
        return frozenset(Category)
    return frozenset(Category.parse(part.strip()) for part in value.split(",") if part.strip())


def _send_or_sign(app: App, actor: Wallet, change: ConsentChange, sign_only: bool) -> None:
    """Submits ``change`` from ``actor``, or prints it signed for a relayer."""
    if sign_only:
        signed = app.client.sign(actor, change)
        click.echo(signed.to_json())
        return
    result = app.client.submit(actor, change)
    app.emit(_tx(result), _tx_line(result))


@cli.group()
def consent() -> None:
    """Grant, revoke, list and export access to a patient's records."""


@consent.command("grant")
@click.argument("grantee")
@scope_option
@click.option("--purpose", default="TREAT", show_default=True, help="HL7 PurposeOfUse: TREAT, HRESCH, PATRQT, ...")
@click.option("--days", type=float, help="Access lasts this many days (from --start, or now).")
@click.option("--until", "until", type=click.DateTime(), help="Access ends at this UTC time.")
@click.option("--start", type=click.DateTime(), help="Access starts at this UTC time (default: now).")
@patient_option
@sign_only_option
@account_option
@_json_anywhere
@pass_app
def consent_grant(
    app: App,
    grantee: str,
    scope: str,
    purpose: str,
    days: float | None,
    until: dt.datetime | None,
    start: dt.datetime | None,
    patient: str | None,
    sign_only: bool,
    account: str,
) -> None:
    """Let GRANTEE (name or address) read the patient's records in scope, for a purpose, for a time.

    When the patient acts, the keys of existing records in scope are shared with the grant.
    """
    if (days is None) == (until is None):
        raise click.UsageError("give exactly one of --days or --until")
    client, actor = app.client, app.unlock(account)
    valid_from = _timestamp(start) if start else client.now()
    valid_until = valid_from + int(days * 86400) if days is not None else _timestamp(until)  # type: ignore[arg-type]
    patient_address = app.address(patient) if patient else actor.address
    args = (
        actor,
        patient_address,
        app.address(grantee),
        _scopes(scope),
        Purpose.parse(purpose),
        valid_from,
        valid_until,
    )
    if sign_only:
        click.echo(client.sign(actor, client.grant_change(*args)).to_json())
        return
    results = client.grant(*args)
    app.emit(
        {"valid_from": valid_from, "valid_until": valid_until, "transactions": [_tx(r) for r in results]},
        "\n".join(_tx_line(r) for r in results) + f"\nvalid {_utc(valid_from)} to {_utc(valid_until)}",
    )


@consent.command("revoke")
@click.argument("grantee")
@patient_option
@sign_only_option
@account_option
@_json_anywhere
@pass_app
def consent_revoke(app: App, grantee: str, patient: str | None, sign_only: bool, account: str) -> None:
    """End GRANTEE's access at once (what it already decrypted cannot be recalled)."""
    actor = app.unlock(account)
    change = app.client.revoke_change(app.address(patient) if patient else actor.address, app.address(grantee))
    _send_or_sign(app, actor, change, sign_only)


@consent.command("list")
@click.option("--patient", "-p", required=True, help="Patient name or address.")
@_json_anywhere
@pass_app
def consent_list(app: App, patient: str) -> None:
    """List the patient's grants and whether each holds now (revoked grants are gone)."""
    client = app.client
    grants, now = client.grants(app.address(patient)), client.now()

    def show() -> None:
        if not grants:
            click.echo("no grants")
        for g in grants:
            state = "active" if g.active_at(now) else ("future" if now < g.valid_from else "expired")
            scopes = ",".join(sorted(c.name.lower() for c in g.scopes))
            flag = "  EMERGENCY" if g.emergency else ""
            window = f"{_utc(g.valid_from)} .. {_utc(g.valid_until)}"
            click.echo(f"{g.grantee}  {state:<7} {g.purpose.name:<7} {window}  {scopes}{flag}")

    app.emit([{**g.to_json(), "active": g.active_at(now)} for g in grants], show)


@consent.command("export")
@click.argument("grantee")
@click.option("--patient", "-p", required=True, help="Patient name or address.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write the resource here.")
@_json_anywhere
@pass_app
def consent_export(app: App, grantee: str, patient: str, output: Path | None) -> None:
    """Write the patient's grant to GRANTEE as a FHIR R4 Consent resource (validated)."""
    from medvault.fhir import to_json_bytes
    from medvault.fhir.consent import grant_to_fhir_consent

    client = app.client
    patient_address, grantee_address = app.address(patient), app.address(grantee)
    grant = client.grant_of(patient_address, grantee_address)
    if grant is None:
        raise ConfigurationError(f"{patient_address} holds no grant to {grantee_address} (never granted, or revoked)")
    granted = client.grant_event(patient_address, grantee_address)
    now = client.now()
    status = "active" if grant.active_at(now) else ("proposed" if now < grant.valid_from else "inactive")
    resource = grant_to_fhir_consent(
        grant,
        status=status,
        recorded_at=granted.timestamp if granted else now,
        chain_id=client.chain.chain_id,
        consent_manager=client.chain.consent.address,
        tx_hash=granted.tx_hash if granted else None,
    )
    data = to_json_bytes(resource)
    if output:
        output.write_bytes(data + b"\n")
        app.emit({"written": str(output)}, f"FHIR Consent ({status}) written to {output}")
    else:
        click.echo(json.dumps(resource, indent=2))


# -- audit ------------------------------------------------------------------------------------


@cli.command()
@click.option("--patient", "-p", required=True, help="Patient name or address.")
@_json_anywhere
@pass_app
def audit(app: App, patient: str) -> None:
    """A patient's whole history: grants, changes, revocations, requests, approvals, emergencies."""
    entries = app.client.audit(app.address(patient))

    def show() -> None:
        for e in entries:
            fields = ", ".join(f"{k}={v}" for k, v in e.details.items())
            click.echo(f"{_utc(e.timestamp)}  {e.event:<21} by {e.sender}  tx {e.tx_hash[:18]}..  {fields}")

    app.emit([e.__dict__ for e in entries], show)


@cli.command()
@click.option("--patient", "-p", required=True, help="Patient name or address.")
@_json_anywhere
@pass_app
def verify(app: App, patient: str) -> None:
    """Check a patient's whole record log: hash chain, CIDs, ciphertext hashes, pins.

    Reports every missing, altered, reordered or unpinned record; exit status 1 if any.
    """
    from medvault.verify import verify_patient

    report = verify_patient(app.client, app.address(patient))

    def show() -> None:
        for index in report.indices:
            findings = report.findings_for(index)
            if not findings:
                click.echo(f"{index:>4}  ok")
            for f in findings:
                click.echo(f"{index:>4}  {f.kind.upper():<9} {f.object:<6} {f.message}")
        tally = ", ".join(f"{n} {kind}" for kind, n in report.tally().items())
        n = len(report.findings)
        outcome = f"{n} finding{'s' * (n != 1)} ({tally})" if tally else "all verified"
        click.echo(f"{report.patient}: {report.count} records, {outcome}")

    app.emit(report.to_json(), show)
    if not report.ok:
        click.get_current_context().exit(1)


# -- delegates, research requests, emergency access, relaying ----------------------------------


@cli.group()
def delegate() -> None:
    """Appoint or remove a delegate (guardian, caregiver) who may manage your consent."""


@delegate.command("appoint")
@click.argument("delegate_name", metavar="DELEGATE")
@sign_only_option
@account_option
@_json_anywhere
@pass_app
def delegate_appoint(app: App, delegate_name: str, sign_only: bool, account: str) -> None:
    """Let DELEGATE grant, revoke and decide requests for you (not appoint others)."""
    patient = app.unlock(account)
    _send_or_sign(app, patient, app.client.delegate_change(patient.address, app.address(delegate_name)), sign_only)


@delegate.command("remove")
@click.argument("delegate_name", metavar="DELEGATE")
@sign_only_option
@account_option
@_json_anywhere
@pass_app
def delegate_remove(app: App, delegate_name: str, sign_only: bool, account: str) -> None:
    """Withdraw DELEGATE's power over your consent."""
    patient = app.unlock(account)
    change = app.client.delegate_change(patient.address, app.address(delegate_name), appoint=False)
    _send_or_sign(app, patient, change, sign_only)


@cli.group()
def access() -> None:
    """Research access requests: a researcher asks, the patient approves or denies."""


@access.command("request")
@click.argument("patient")
@scope_option
@click.option("--purpose", default="HRESCH", show_default=True, help="HL7 PurposeOfUse code.")
@click.option("--days", type=float, required=True, help="How long access lasts once approved.")
@click.option("--study", required=True, help="Study id: a label of up to 32 bytes, or 0x + 64 hex digits.")
@account_option
@_json_anywhere
@pass_app
def access_request(app: App, patient: str, scope: str, purpose: str, days: float, study: str, account: str) -> None:
    """Ask PATIENT for time-limited access (you must be an accredited researcher)."""
    request, tx = app.client.request_access(
        app.unlock(account), app.address(patient), _scopes(scope), Purpose.parse(purpose), int(days * 86400), study
    )
    app.emit({"request": request.to_json(), "transaction": _tx(tx)}, f"request {request.request_id:#x}\n{_tx_line(tx)}")


def _decide(app: App, request_id: str, approve: bool, sign_only: bool, account: str) -> None:
    actor = app.unlock(account)
    try:
        number = int(request_id, 16 if request_id.startswith("0x") else 10)
    except ValueError:
        raise ConfigurationError(f"request id {request_id!r} is not a number") from None
    change = app.client.decision_change(actor, app.client.request(number), approve=approve)
    _send_or_sign(app, actor, change, sign_only)


@access.command("approve")
@click.argument("request_id")
@sign_only_option
@account_option
@_json_anywhere
@pass_app
def access_approve(app: App, request_id: str, sign_only: bool, account: str) -> None:
    """Approve REQUEST_ID: the researcher's access starts now and lasts the requested time."""
    _decide(app, request_id, True, sign_only, account)


@access.command("deny")
@click.argument("request_id")
@sign_only_option
@account_option
@_json_anywhere
@pass_app
def access_deny(app: App, request_id: str, sign_only: bool, account: str) -> None:
    """Deny REQUEST_ID."""
    _decide(app, request_id, False, sign_only, account)


@access.command("list")
@click.option("--patient", "-p", help="Requests to this patient.")
@click.option("--researcher", "-r", help="Requests by this researcher.")
@_json_anywhere
@pass_app
def access_list(app: App, patient: str | None, researcher: str | None) -> None:
    """List research requests and their status."""
    requests = app.client.requests(
        patient=app.address(patient) if patient else None, researcher=app.address(researcher) if researcher else None
    )
    lines = [
        f"{r.request_id:#x}  {r.status.name.lower():<8} {r.researcher} -> {r.patient}  {r.purpose.name} "
        f"{r.duration / 86400:g}d  study {r.to_json()['study_id']}"
        for r in requests
    ]
    app.emit([r.to_json() for r in requests], "\n".join(lines) or "no requests")


@cli.command()
@click.argument("patient")
@click.option("--reason", required=True, help="Why emergency access is needed (recorded on chain).")
@account_option
@_json_anywhere
@pass_app
def emergency(app: App, patient: str, reason: str, account: str) -> None:
    """Take 24 hours of emergency access to PATIENT's records (accredited providers only)."""
    result = app.client.take_emergency_access(app.unlock(account), app.address(patient), reason)
    app.emit(_tx(result), _tx_line(result))


@cli.command()
@click.argument("file", type=click.File("r"))
@account_option
@_json_anywhere
@pass_app
def relay(app: App, file: Any, account: str) -> None:
    """Send a signed consent change from FILE ('-' for stdin); the account pays the gas."""
    result = app.client.relay(app.unlock(account), SignedConsent.from_json(file.read()))
    app.emit(_tx(result), _tx_line(result))


# -- key-release keepers ----------------------------------------------------------------------


@cli.group()
def keeper() -> None:
    """Key-release keepers: hold t-of-n shares of a patient's record keys and release them to
    grantees while consent holds on chain, posting a receipt for every release."""


@keeper.command("set")
@click.argument("keepers", nargs=-1)
@click.option(
    "--threshold", "-t", type=click.IntRange(0, 16), required=True, help="How many keepers release a key together."
)
@account_option
@_json_anywhere
@pass_app
def keeper_set(app: App, keepers: tuple[str, ...], threshold: int, account: str) -> None:
    """Choose the signing patient's KEEPERS (names or addresses, registered; none with
    --threshold 0 removes them). Records written from then on escrow their key with them."""
    result = app.client.set_keepers(app.unlock(account), [app.address(k) for k in keepers], threshold)
    app.emit(_tx(result), _tx_line(result))


@keeper.command("list")
@click.option("--patient", "-p", required=True, help="Patient name or address.")
@_json_anywhere
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

    app.emit(keepers.to_json(), show)


@keeper.command("releases")
@click.option("--patient", "-p", required=True, help="Patient name or address.")
@_json_anywhere
@pass_app
def keeper_releases(app: App, patient: str) -> None:
    """List the key-release receipts (KeyReleased events) of a patient's keepers."""
    releases = app.client.releases(app.address(patient))

    def show() -> None:
        if not releases:
            click.echo("no releases")
        for r in releases:
            when = dt.datetime.fromtimestamp(r.released_at, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
            click.echo(f"{when}  record {r.index:>3} to {r.grantee} by keeper {r.keeper}")

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
@_json_anywhere
@pass_app
def keeper_run(
    app: App, account: str, host: str, port: int, announce: str | None, state: Path | None, batch_seconds: float
) -> None:
    """Serve key requests as keeper ACCOUNT until interrupted (SIGINT or SIGTERM).

    POST /v1/key-shares releases this keeper's share of a record key to a reader who signed an
    EIP-712 KeyRequest, after checking consent on chain; receipts are posted in batches.
    """
    import logging
    import signal
    import threading

    from medvault.keeper import KeeperService

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    wallet = app.unlock(account)
    folder = state or app.home / "keepers" / account
    service = KeeperService(
        wallet, app.client, folder, host=host, port=port, batch_seconds=batch_seconds, announce=announce
    ).start()
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


# -- queries (local event index) ---------------------------------------------------------------


def _query_app(ctx: click.Context) -> App:
    app = ctx.find_object(App)
    if app is None:
        raise ConfigurationError("no medvault context")
    return app


@cli.group()
def query() -> None:
    """Queries through the local event index (<home>/index/), synced from chain events first."""


query_group(
    lambda ctx: EventIndex.open(_query_app(ctx).home, Chain.open(_query_app(ctx).rpc_url, _query_app(ctx).home)),
    resolve=lambda ctx, value: _query_app(ctx).address(value),
    json_default=lambda ctx: _query_app(ctx).as_json,
    group=query,
)


# -- benchmarks -------------------------------------------------------------------------------


@cli.group()
def bench() -> None:
    """Benchmarks that print figures (they are not tests)."""


@bench.command("gas")
@_json_anywhere
@pass_app
def bench_gas(app: App) -> None:
    """Gas per operation on a fresh anvil, against the budgets."""
    from medvault.dev.bench import BUDGETS, measure_gas

    gas = measure_gas()
    lines = [
        f"{case:<18} {used:>8,}" + (f"   budget {BUDGETS[case]:,}" if BUDGETS[case] else "")
        for case, used in gas.items()
    ]
    if app.as_json:
        click.echo(json.dumps(gas))
    else:
        click.echo("\n".join(lines))


@bench.command("release")
@click.option("--runs", default=20, show_default=True, help="Releases to time.")
@_json_anywhere
@pass_app
def bench_release(app: App, runs: int) -> None:
    """Time one record key release from keepers (t = 2 of 3) and one whole read."""
    from medvault.dev.bench import measure_release

    figures = measure_release(runs)
    if app.as_json:
        click.echo(json.dumps(figures))
    else:
        click.echo(f"key release, t = 2 of 3 keepers:  median {figures['release_median_ms']} ms, "
                   f"p90 {figures['release_p90_ms']} ms ({runs} runs)")  # fmt: skip
        click.echo(f"whole read through the keepers:   median {figures['read_median_ms']} ms, "
                   f"p90 {figures['read_p90_ms']} ms")  # fmt: skip


@bench.command("all")
@click.option("--patients", type=click.IntRange(min=1), default=1000, show_default=True, help="Patients to seed.")
@click.option("--records", type=click.IntRange(min=1), default=10, show_default=True, help="Records per patient.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="Also write the figures as JSON here.")
@_json_anywhere
@pass_app
def bench_all(app: App, patients: int, records: int, output: Path | None) -> None:
    """Every figure of the benchmark (gas, seeding against its baselines, queries, record I/O)
    on fresh local nodes; a table against the targets, progress on stderr."""
    from medvault.dev.bench import format_table, measure_all

    results = measure_all(patients, records, progress=True)
    if output is not None:
        output.write_text(json.dumps(results, indent=2) + "\n")
    if app.as_json:
        click.echo(json.dumps(results))
    else:
        click.echo(format_table(results["targets"]))
        if output is not None:
            click.echo(f"figures written to {output}")


# -- demo -------------------------------------------------------------------------------------


@cli.command()
@_json_anywhere
@pass_app
def demo(app: App) -> None:
    """Run the patient / provider / doctor story on a fresh local chain and IPFS node."""
    from medvault.dev.demo import run_demo

    run_demo(as_json=app.as_json)


@cli.command()
@click.option("--patients", "-n", type=click.IntRange(min=1), default=100, show_default=True, help="Patients.")
@click.option("--records-per-patient", "-r", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--seed", "-s", default="0", show_default=True, help="Seed value: the same seed, the same plan.")
@click.option("--account", "-a", help="Admin keystore account that accredits (default: the deployer, impersonated).")
@_json_anywhere
@pass_app
def seed(app: App, patients: int, records_per_patient: int, seed: str, account: str | None) -> None:
    """Fill a local anvil deployment with synthetic patients, records and consent (resumable)."""
    from medvault.dev.seed import plan_seed, run_seed

    plan = plan_seed(seed, patients, records_per_patient)
    admin = app.unlock(account) if account else None
    report = run_seed(app.client, app.rpc_url, plan, admin=admin, progress=not app.as_json)
    summary = ", ".join(f"{k} {v}" for k, v in report.done.items())
    app.emit(report.to_json(), f"seeded in {report.seconds:.1f} s: {summary} ({report.transactions} transactions)")


def _timestamp(value: dt.datetime) -> int:
    return int(value.replace(tzinfo=dt.UTC).timestamp())


def _utc(timestamp: int) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def main() -> None:
    cli(prog_name="medvault")
