"""The audit trail: a patient's whole history, read from the events of the four contracts."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from eth_utils.address import to_checksum_address

from medvault.cids import cid_or_none
from medvault.client.access import GRANT_EVENTS
from medvault.client.core import Core
from medvault.model import AuditEntry

__all__ = ["ACTOR_ARGUMENTS", "AUDITED_EVENTS", "Audit", "event_value", "subject_argument", "with_signers"]

# What `audit` reads: every event of each contract that names the patient.
AUDITED_EVENTS = {
    "ParticipantRegistry": ("ParticipantRegistered",),
    "RecordRegistry": ("RecordAdded",),
    "ConsentManager": (
        "AccessGranted", "KeysShared", "AccessRevoked", "ActedAsDelegate", "DelegateAppointed", "DelegateRemoved",
        "AccessRequested", "RequestApproved", "RequestDenied", "EmergencyAccessTaken", "EmergencyPolicySet",
        "EmergencyStandingSet", "NonceInvalidated",
    ),
    "KeeperDirectory": ("KeepersChosen", "KeyReleased"),
}  # fmt: skip

# Events of a party acting in its own right, and the argument naming it; every other audited
# event is a change by the patient's side: the patient's, or a delegate's when an
# ActedAsDelegate of the same transaction names one.
ACTOR_ARGUMENTS = {
    "RecordAdded": "author", "AccessRequested": "researcher", "EmergencyAccessTaken": "provider",
    "KeyReleased": "keeper", "ActedAsDelegate": "delegate",
}  # fmt: skip


class Audit(Core):
    def audit(self, patient: str) -> list[AuditEntry]:
        """The patient's whole history from chain events, oldest first: registration, records,
        grants and key releases, revocations, delegates, requests and decisions, emergencies."""
        patient = to_checksum_address(patient)
        logs = [
            event
            for contract, kinds in AUDITED_EVENTS.items()
            for kind in kinds
            for event in self.chain.events(contract, kind, **{subject_argument(kind): patient})
        ]
        logs.sort(key=lambda e: (e["blockNumber"], e["logIndex"]))
        blocks: dict[int, int] = {}
        senders: dict[str, str] = {}
        entries = []
        for event in logs:
            tx = event["transactionHash"].to_0x_hex()
            if tx not in senders:
                senders[tx] = self.chain.sender_of(tx)
            if event["blockNumber"] not in blocks:
                blocks[event["blockNumber"]] = self.chain.block_time(event["blockNumber"])
            details = {k: event_value(v) for k, v in event["args"].items() if k not in ("patient", "account")}
            entries.append(AuditEntry(blocks[event["blockNumber"]], event["event"], senders[tx], details, tx))
        return with_signers(patient, entries)

    def grant_event(self, patient: str, grantee: str) -> AuditEntry | None:
        """The event that created the patient's current grant to ``grantee``, if any."""
        grantee = to_checksum_address(grantee)
        for entry in reversed(self.audit(patient)):
            key = dict(GRANT_EVENTS).get(entry.event)
            if key and entry.details.get(key) == grantee:
                return entry
        return None


def with_signers(patient: str, entries: list[AuditEntry]) -> list[AuditEntry]:
    """``entries`` (one patient's history) with the party who authorised each: read from the
    events themselves, so a relayed change shows its signer, not the account that sent it."""
    delegates = {e.tx_hash: e.details["delegate"] for e in entries if e.event == "ActedAsDelegate"}
    patient = to_checksum_address(patient)

    def signer(e: AuditEntry) -> str:
        actor = e.details.get(ACTOR_ARGUMENTS.get(e.event, ""))
        return str(actor or delegates.get(e.tx_hash, patient))

    return [replace(e, signer=signer(e)) for e in entries]


def subject_argument(event: str) -> str:
    """The event argument that names the patient."""
    return "account" if event == "ParticipantRegistered" else "patient"


def event_value(value: Any) -> Any:
    """An event argument as JSON-friendly text: bytes as CIDs where they are CIDs, else hex."""
    if isinstance(value, bytes):
        text = cid_or_none(value)
        return text if text is not None else "0x" + value.hex()
    return value
