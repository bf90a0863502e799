"""The access policy: whether a reader may read a record now, and if not, why not.

The chain decides (``ConsentManager.canRead`` at the latest block); this module asks it and,
on a refusal, reads the grant to say which rule refused. The client checks it before fetching
a record, and every keeper checks it again before releasing a share: one policy, two places.
"""

from __future__ import annotations

from eth_utils.address import to_checksum_address

from medvault.client.core import Core
from medvault.errors import AccessDeniedError
from medvault.model import Category, Grant, Purpose, RecordPointer, categories_of

__all__ = ["GRANT_EVENTS", "Access"]

# Events that create a grant, and the argument naming the grantee in each.
GRANT_EVENTS = (("AccessGranted", "grantee"), ("RequestApproved", "researcher"), ("EmergencyAccessTaken", "provider"))


class Access(Core):
    def can_read(self, patient: str, reader: str, category: Category) -> bool:
        patient, reader = to_checksum_address(patient), to_checksum_address(reader)
        return bool(self.chain.call(self.chain.consent.functions.canRead(patient, reader, int(category)), "canRead"))

    def grant_of(self, patient: str, grantee: str) -> Grant | None:
        """The grant as the chain holds it now, or None if there is none (never granted, or revoked)."""
        patient, grantee = to_checksum_address(patient), to_checksum_address(grantee)
        fn = self.chain.consent.functions.grantOf(patient, grantee)
        valid_from, valid_until, scopes, purpose, emergency, _nonce = self.chain.call(fn, "grantOf")
        if valid_until == 0:
            return None
        return Grant(patient, grantee, categories_of(scopes), Purpose(purpose), valid_from, valid_until, emergency)

    def grants(self, patient: str) -> list[Grant]:
        """Every grant the patient holds now (expired ones included, revoked ones not)."""
        patient = to_checksum_address(patient)
        grantees = dict.fromkeys(
            event["args"][key]
            for kind, key in GRANT_EVENTS
            for event in self.chain.events("ConsentManager", kind, patient=patient)
        )
        return [g for g in (self.grant_of(patient, grantee) for grantee in grantees) if g]

    def access_denial(self, reader: str, pointer: RecordPointer) -> tuple[str, str] | None:
        """None if the chain lets ``reader`` read ``pointer`` now (latest block), else why not:
        a code (no-grant, revoked, expired, not-yet-valid, out-of-scope) and a sentence."""
        reader = to_checksum_address(reader)
        if reader in (pointer.patient, pointer.author) or self.can_read(pointer.patient, reader, pointer.category):
            return None
        grant, now = self.grant_of(pointer.patient, reader), self.now()
        if grant is None:
            revoked = self.chain.events("ConsentManager", "AccessRevoked", patient=pointer.patient, grantee=reader)
            code = "revoked" if revoked else "no-grant"
            return code, "no active grant: " + (
                "the patient revoked it" if revoked else "the patient never granted one"
            )
        if now >= grant.valid_until:
            return "expired", f"its grant expired at {grant.valid_until} (chain time {now})"
        if now < grant.valid_from:
            return "not-yet-valid", f"its grant starts at {grant.valid_from} (chain time {now})"
        return "out-of-scope", f"record {pointer.index} is {pointer.category.name.lower()}, outside the grant's scope"

    def check_access(self, reader: str, pointer: RecordPointer) -> None:
        """Raises AccessDeniedError with the reason unless ``reader`` may read ``pointer`` now."""
        denial = self.access_denial(reader, pointer)
        if denial is not None:
            raise AccessDeniedError(reader, pointer.patient, denial[1])
