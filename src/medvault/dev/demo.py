"""The end-to-end story, on a fresh anvil and Kubo that it starts and stops itself.

A patient registers and chooses three key-release keepers (any two can release a record key);
an accredited provider adds encrypted FHIR records; the patient grants a doctor access; the
doctor reads; a stranger is refused; the patient revokes; the doctor is refused, and a record
written after the revoke is not even wrapped for the doctor. A researcher then asks for
time-limited access; the patient approves by a signature someone else relays, sharing no keys;
with the patient's client gone, the researcher reads through the keepers, also with one keeper
down, and once the window closes the keepers refuse. Break-glass: the patient allows the
provider to take emergency access (opening no earlier records), sees the EMERGENCY in the
audit and blocks the provider, who cannot take it again; a guardian appointed on narrow terms
grants the doctor access that ends when the patient removes the guardian.
"""

from __future__ import annotations

import json
import random
import secrets
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from medvault.accounts import Keystore, Wallet
from medvault.chain import Chain, TxResult, connect, deploy
from medvault.chain.artifacts import load_artifacts
from medvault.client import Medvault
from medvault.dev import anvil
from medvault.dev.node import LocalNode, free_port
from medvault.dev.synthetic import synthetic_patient, synthetic_records
from medvault.errors import AccessDeniedError, ContractError
from medvault.fhir import category_for, to_json_bytes
from medvault.ipfs import IpfsClient
from medvault.keeper import KeeperService
from medvault.model import Category, DelegateTerms, EmergencyMode, EmergencyStanding, GrantTerms, Purpose, Role

if TYPE_CHECKING:
    from web3 import Web3

__all__ = ["run_demo"]

CAST = ("admin", "patient", "provider", "doctor", "researcher", "relayer", "stranger")
KEEPERS = ("keeper-1", "keeper-2", "keeper-3")
KEEPER_THRESHOLD = 2
GRANT_DAYS = 30
STUDY_DAYS = 14


class Story:
    """Prints each step (who, what, transaction, gas, CID) and keeps them for --json."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.steps: list[dict[str, Any]] = []
        self.names: dict[str, str] = {}

    def say(self, who: str, what: str, *, tx: TxResult | None = None, **details: Any) -> None:
        step = {"step": len(self.steps) + 1, "who": who, "what": what, **details}
        if tx:
            step.update(tx=tx.tx_hash, gas_used=tx.gas_used, block=tx.block_number)
        self.steps.append(step)
        if self.as_json:
            return
        click.echo(f"{step['step']:>3}. {click.style(who, bold=True):<19} {what}")
        if tx:
            click.echo(f"       tx {tx.tx_hash}  block {tx.block_number}  gas {tx.gas_used:,}")
        for key, value in details.items():
            click.echo(f"       {key} {value}")

    def refused(self, who: str, what: str, error: AccessDeniedError) -> None:
        reason = str(error).split(": ", 1)[-1]
        self.say(who, f"{what}: {click.style('refused', fg='red') if not self.as_json else 'refused'}", reason=reason)


def run_demo(as_json: bool = False) -> None:
    story = Story(as_json)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="medvault-demo-") as tmp:
        home = Path(tmp)
        node = LocalNode(home / "node", chain_port=free_port(), ipfs_port=free_port())
        info = node.up()
        try:
            story.say(
                "stack", "local chain and IPFS node started", chain=info.rpc_url, ipfs=f"{info.ipfs_api} (offline)"
            )
            _story(story, home, info.rpc_url, info.ipfs_api)
        finally:
            node.down()
    seconds = time.monotonic() - started
    if as_json:
        click.echo(json.dumps({"steps": story.steps, "seconds": round(seconds, 1)}, indent=2))
    else:
        click.echo(f"\nstory complete in {seconds:.1f} s; the node was stopped and its state removed")


def _story(story: Story, home: Path, rpc_url: str, ipfs_api: str) -> None:
    w3 = connect(rpc_url)
    keystore = Keystore(home)
    # Throwaway accounts: the passphrase lives only in this process's memory.
    passphrase = secrets.token_urlsafe(16)
    wallets: dict[str, Wallet] = {}
    for name in CAST + KEEPERS:
        keystore.create(name, passphrase)
        wallets[name] = keystore.unlock(name, passphrase)
        anvil.fund(w3, wallets[name].address)
    story.say("setup", "encrypted keystores created and funded", accounts=_addresses(wallets))
    admin, provider, researcher = wallets["admin"], wallets["provider"], wallets["researcher"]

    deployment, results = deploy(w3, admin, home)
    for result in results:
        story.say("admin", result.action, tx=result)

    def client() -> Medvault:
        return Medvault(Chain(w3, deployment, load_artifacts()), IpfsClient(ipfs_api))

    mv = client()

    for name in ("patient", "provider", "doctor", "researcher"):
        story.say(name, "registers an encryption public key (X25519)", tx=mv.register(wallets[name]))
    story.say("admin", "accredits the provider", tx=mv.accredit(admin, provider.address, Role.PROVIDER))
    story.say("admin", "accredits the researcher", tx=mv.accredit(admin, researcher.address, Role.RESEARCHER))
    patient = wallets["patient"]
    tx = mv.set_writer(patient, provider.address, frozenset(Category))
    story.say("patient", "puts the provider on its care team: it may add records of every category", tx=tx)
    keepers = [_start_keeper(story, home, wallets[name], client()) for name in KEEPERS]
    try:
        _with_keepers(story, mv, w3, wallets, keepers)
    finally:
        for keeper in keepers:
            keeper.stop()


def _start_keeper(story: Story, home: Path, wallet: Wallet, client: Medvault) -> KeeperService:
    story.say(wallet.name, "registers an encryption public key", tx=client.register(wallet))
    port = free_port()
    keeper = KeeperService(
        wallet, client, home / "keepers" / wallet.name, port=port, batch_seconds=1, announce=f"http://127.0.0.1:{port}"
    ).start()
    story.say(wallet.name, "runs a key-release keeper and announces it on chain", url=keeper.url)
    return keeper


def _with_keepers(
    story: Story, mv: Medvault, w3: Web3, wallets: dict[str, Wallet], keepers: list[KeeperService]
) -> None:
    patient, provider, doctor, stranger = (wallets[n] for n in ("patient", "provider", "doctor", "stranger"))
    chosen = [str(k.address) for k in keepers]
    story.say(
        "patient",
        f"chooses the three keepers, any {KEEPER_THRESHOLD} of which can release a record key",
        tx=mv.set_keepers(patient, chosen, KEEPER_THRESHOLD),
    )

    rng = random.Random(7)  # noqa: S311 - synthetic data, reproducible on purpose
    fhir_patient = synthetic_patient(rng)
    resources = synthetic_records(rng, fhir_patient, 12)
    picks = _pick(resources, ["laboratory", "conditions", "medications", "immunizations"])

    def add(resource: dict[str, Any]) -> int:
        receipt = mv.add_record(
            provider, patient.address, to_json_bytes(resource), Category.parse(category_for(resource))
        )
        readers = ", ".join(_who(wallets, r) for r in receipt.readers)
        story.say(
            "provider",
            f"adds record {receipt.pointer.index} for the patient: {_describe(resource)}",
            tx=receipt.tx,
            cid=receipt.pointer.cid,
            key=f"wrapped for {readers}",
        )
        return receipt.pointer.index

    first = add(picks[0])
    add(picks[1])

    record = mv.read_record(patient, patient.address, first)
    story.say(
        "patient", f"reads record {first}: CID and content hash verified, decrypted", content=_summary(record.data)
    )
    _attempt(story, mv, stranger, "stranger", patient.address, first)
    _attempt(story, mv, doctor, "doctor", patient.address, first)

    now = mv.now()
    everything = frozenset(Category)
    terms = GrantTerms(everything, Purpose.TREAT, now, now + GRANT_DAYS * 86400)
    for tx in mv.grant(patient, patient.address, doctor.address, terms).transactions:
        story.say("patient", f"grants the doctor all records for treatment (TREAT), {GRANT_DAYS} days", tx=tx)
    for index in range(mv.record_count(patient.address)):
        record = mv.read_record(doctor, patient.address, index)
        story.say("doctor", f"reads record {index}: verified and decrypted", content=_summary(record.data))
    _attempt(story, mv, stranger, "stranger", patient.address, first)

    after_grant = add(picks[2])
    story.say(
        "doctor",
        f"reads record {after_grant}: verified and decrypted",
        content=_summary(mv.read_record(doctor, patient.address, after_grant).data),
    )

    story.say("patient", "revokes the doctor's access", tx=mv.revoke(patient, patient.address, doctor.address))
    _attempt(story, mv, doctor, "doctor", patient.address, after_grant)
    after_revoke = add(picks[3])
    _attempt(story, mv, doctor, "doctor", patient.address, after_revoke)

    _break_glass(story, mv, w3, wallets, resources)
    _guardian(story, mv, wallets, lambda: add(picks[0]))
    _research(story, mv, w3, wallets, keepers, lab_record=first, condition_record=1, medication_record=after_grant)


def _break_glass(
    story: Story, mv: Medvault, w3: Web3, wallets: dict[str, Wallet], resources: list[dict[str, Any]]
) -> None:
    """Emergency access under the patient's policy: allowed, flagged, bounded to the window, blocked."""
    patient, provider = wallets["patient"], wallets["provider"]
    own = next(r for r in resources if category_for(r) == "immunizations")
    receipt = mv.add_record(patient, patient.address, to_json_bytes(own), Category.IMMUNIZATIONS)
    story.say("patient", f"uploads record {receipt.pointer.index} itself: {_describe(own)}", tx=receipt.tx)
    anvil.warp(w3, 3600)
    story.say(
        "patient",
        "allows break-glass access by the provider only, all categories, no earlier records",
        tx=mv.set_emergency_policy(patient, EmergencyMode.NAMED, full_history=False),
    )
    story.say(
        "patient",
        "names the provider",
        tx=mv.set_emergency_standing(patient, provider.address, EmergencyStanding.ALLOWED),
    )
    story.say("provider", "breaks the glass: 24 hours of emergency access", tx=mv.take_emergency_access(
        provider, patient.address, "unconscious in A&E"
    ))  # fmt: skip
    _attempt(story, mv, provider, "provider", patient.address, receipt.pointer.index)
    flagged = [e for e in mv.audit(patient.address) if e.event == "EmergencyAccessTaken"]
    story.say("patient", "sees the EMERGENCY in the audit", reason=flagged[-1].details["reason"])
    story.say(
        "patient", "blocks the provider: its emergency access ends now",
        tx=mv.set_emergency_standing(patient, provider.address, EmergencyStanding.BLOCKED),
    )  # fmt: skip
    try:
        mv.take_emergency_access(provider, patient.address, "again")
    except ContractError as exc:
        story.say("provider", "tries to break the glass again: refused", reason=exc.name)
    else:
        raise AssertionError("a blocked provider took emergency access again")


def _guardian(story: Story, mv: Medvault, wallets: dict[str, Wallet], add: Any) -> None:
    """A delegate on narrow terms grants the doctor; removing the delegate ends that grant."""
    patient, guardian, doctor = wallets["patient"], wallets["relayer"], wallets["doctor"]
    terms = DelegateTerms(frozenset({Category.LABORATORY}), 7 * 86400, open_history=False)
    story.say("patient", "appoints a guardian: laboratory only, windows of at most 7 days, no earlier records",
              tx=mv.set_delegate(patient, guardian.address, terms=terms))  # fmt: skip
    now = mv.now()
    for tx in mv.grant(
        guardian, patient.address, doctor.address, GrantTerms(terms.scopes, Purpose.TREAT, now, now + 7 * 86400)
    ).transactions:
        story.say("guardian", "grants the doctor laboratory records for 7 days (signed, relayed by itself)", tx=tx)
    index = add()
    story.say("doctor", f"reads record {index}, written after the guardian's grant",
              content=_summary(mv.read_record(doctor, patient.address, index).data))  # fmt: skip
    _attempt(story, mv, doctor, "doctor", patient.address, 0)
    story.say("patient", "removes the guardian; the grants it made end with it",
              tx=mv.set_delegate(patient, guardian.address, appoint=False))  # fmt: skip
    _attempt(story, mv, doctor, "doctor", patient.address, index)


def _research(
    story: Story,
    mv: Medvault,
    w3: Web3,
    wallets: dict[str, Wallet],
    keepers: list[KeeperService],
    *,
    lab_record: int,
    condition_record: int,
    medication_record: int,
) -> None:
    """A researcher asks for 14 days of lab and condition records; the patient approves by a
    signature that someone else relays, sharing no keys; the researcher reads through the
    keepers while the patient's client is gone; the window closes and the keepers refuse."""
    patient, researcher, relayer = wallets["patient"], wallets["researcher"], wallets["relayer"]
    scopes = frozenset({Category.LABORATORY, Category.CONDITIONS})
    request, tx = mv.request_access(
        researcher, patient.address, scopes, Purpose.HRESCH, STUDY_DAYS * 86400, "DIAB-2026"
    )
    story.say(
        "researcher",
        f"requests laboratory + conditions for study DIAB-2026 (HRESCH), {STUDY_DAYS} days",
        tx=tx,
        request=hex(request.request_id),
    )
    signed = mv.sign(patient, mv.decision_change(patient, request, approve=True, share_keys=False))
    story.say(
        "patient",
        "approves by signing EIP-712 typed data in the wallet (no transaction, no gas, no keys)",
        signature=signed.signature[:20] + "...",
        nonce=signed.typed_data["message"]["nonce"],
    )
    story.say("relayer", "relays the patient's signed approval, paying the gas", tx=mv.relay(relayer, signed))
    story.say("patient", "closes the wallet: from here on no key comes from the patient's client")
    started = time.monotonic()
    record = mv.read_record(researcher, patient.address, lab_record)
    story.say(
        "researcher",
        f"reads record {lab_record}: each keeper checked the grant on chain and released a share",
        content=_summary(record.data),
        took=f"{(time.monotonic() - started) * 1000:.0f} ms",
    )
    keepers[0].stop()
    story.say("keeper-1", "goes down")
    record = mv.read_record(researcher, patient.address, condition_record)
    story.say(
        "researcher", f"reads record {condition_record} with the two keepers still up", content=_summary(record.data)
    )
    _attempt(story, mv, researcher, "researcher", patient.address, medication_record)
    anvil.warp(w3, (STUDY_DAYS + 1) * 86400)
    story.say("chain", f"time moves {STUDY_DAYS + 1} days forward, past the end of the research grant")
    _attempt(story, mv, researcher, "researcher", patient.address, lab_record)
    try:
        mv.release_key(researcher, mv.record(patient.address, lab_record))
    except AccessDeniedError as exc:
        story.refused("researcher", "asks the keepers directly, skipping the client's own check", exc)
    for keeper in keepers[1:]:
        keeper.flush()
    receipts = mv.releases(patient.address)
    story.say(
        "chain",
        f"{len(receipts)} key releases, each with an on-chain receipt (KeyReleased)",
        by=", ".join(sorted({_who(wallets, r.keeper) for r in receipts})),
    )


def _attempt(story: Story, mv: Medvault, reader: Wallet, who: str, patient: str, index: int) -> None:
    try:
        mv.read_record(reader, patient, index)
    except AccessDeniedError as exc:
        story.refused(who, f"tries to read record {index}", exc)
    else:
        raise AssertionError(f"{who} read record {index} without a grant")


def _pick(resources: list[dict[str, Any]], categories: list[str]) -> list[dict[str, Any]]:
    """One resource of each wanted category, in that order."""
    return [next(r for r in resources if category_for(r) == c) for c in categories]


def _addresses(wallets: dict[str, Wallet]) -> str:
    return ", ".join(f"{name} {wallet.address}" for name, wallet in wallets.items())


def _who(wallets: dict[str, Wallet], address: str) -> str:
    return next((n for n, w in wallets.items() if w.address == address), address)


def _describe(resource: dict[str, Any]) -> str:
    kind = resource["resourceType"]
    concept = resource.get("code") or resource.get("vaccineCode") or resource.get("medicationCodeableConcept") or {}
    text = concept.get("text") or next((c.get("display") for c in concept.get("coding", [])), "")
    return f"{kind} ({text})" if text else kind


def _summary(data: bytes) -> str:
    resource = json.loads(data)
    value = resource.get("valueQuantity")
    suffix = f" = {value['value']} {value.get('unit', '')}".rstrip() if value else ""
    return _describe(resource) + suffix
