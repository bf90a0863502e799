"""Who authorised each audit entry, read from the events alone: the patient for their side's
changes (whoever sent them), the delegate an ActedAsDelegate of the same transaction names,
and the acting party for events a provider, researcher or keeper makes."""

from __future__ import annotations

from medvault.client.audit import with_signers
from medvault.model import AuditEntry

PATIENT = "0x" + "11" * 20
RELAYER = "0x" + "22" * 20
DELEGATE = "0x" + "33" * 20
PROVIDER = "0x" + "44" * 20


def _entry(event: str, sender: str, tx: str, **details: object) -> AuditEntry:
    return AuditEntry(1_796_256_000, event, sender, dict(details), tx)


def test_signers_come_from_the_events_not_the_sender() -> None:
    entries = [
        _entry("AccessGranted", RELAYER, "0x01", grantee=PROVIDER),  # the patient's signature, relayed
        _entry("ActedAsDelegate", RELAYER, "0x02", delegate=DELEGATE),
        _entry("AccessRevoked", RELAYER, "0x02", grantee=PROVIDER),  # the delegate's, relayed
        _entry("EmergencyAccessTaken", PROVIDER, "0x03", provider=PROVIDER, reason="ER"),
        _entry("AccessGranted", PATIENT, "0x04", grantee=DELEGATE),  # the patient's own transaction
    ]
    signers = [e.signer for e in with_signers(PATIENT.upper().replace("0X", "0x"), entries)]
    assert [s.lower() for s in signers] == [PATIENT, DELEGATE, DELEGATE, PROVIDER, PATIENT]
    assert [e.sender for e in with_signers(PATIENT, entries)] == [e.sender for e in entries]  # kept for "relayed by"
