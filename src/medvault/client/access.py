"""The access policy: whether a reader may read a record now, and if not, why not.

The chain decides (``ConsentManager.canReadRecord`` at the latest block: the grant's window,
scope and standing, and the history rule for records written before the grant); this module
asks it and, on a refusal, reads the grant to say which rule refused. The client checks it
before fetching a record, and every keeper checks it again before releasing a share: one
policy, two places.
"""

from __future__ import annotations

from eth_utils.address import to_checksum_address

from medvault.client.core import Core
from medvault.errors import AccessDeniedError
from medvault.model import Category, Grant, GrantKind, Purpose, RecordPointer, categories_of
from medvault.words import utc

__all__ = ["GRANT_EVENTS", "Access"]

# Events that create a grant, and the argument naming the grantee in each.
GRANT_EVENTS = (("AccessGranted", "grantee"), ("RequestApproved", "researcher"), ("EmergencyAccessTaken", "provider"))


class Access(Core):
    def can_read(self, patient: str, reader: str, category: Category) -> bool:
        patient, reader = to_checksum_address(patient), to_checksum_address(reader)
        return bool(self.chain.call(self.chain.consent.functions.canRead(patient, reader, int(category)), "canRead"))

    def can_read_record(self, patient: str, reader: str, category: Category, written_at: int) -> bool:
        """``canRead`` and the history rule: a record written before the grant opens only if the
        grant may open history (the patient's own; emergency with the full-history opt-in; a
        delegate's if its terms allow)."""
        patient, reader = to_checksum_address(patient), to_checksum_address(reader)
        fn = self.chain.consent.functions.canReadRecord(patient, reader, int(category), written_at)
        return bool(self.chain.call(fn, "canReadRecord"))

    def grant_of(self, patient: str, grantee: str) -> Grant | None:
        """The grant as the chain holds it now, or None if there is none (never granted, or revoked)."""
        patient, grantee = to_checksum_address(patient), to_checksum_address(grantee)
        fn = self.chain.consent.functions.grantOf(patient, grantee)
        valid_from, valid_until, scopes, purpose, kind, _nonce, appointment, _standing = self.chain.call(fn, "grantOf")
        if valid_until == 0:
            return None
        return Grant(
            patient, grantee, categories_of(scopes), Purpose(purpose), valid_from, valid_until,
            kind == GrantKind.EMERGENCY, GrantKind(kind), appointment,
        )  # fmt: skip

    def grants(self, patient: str) -> list[Grant]:
        """Every grant the patient holds now (expired ones included, revoked ones not)."""
        patient = to_checksum_address(patient)
        grantees = dict.fromkeys(
            event["args"][key]
            for kind, key in GRANT_EVENTS
            for event in self.chain.events("ConsentManager", kind, patient=patient)
        )
        return [g for g in (self.grant_of(patient, grantee) for grantee in grantees) if g]

    def access_denial(
        self, reader: str, pointer: RecordPointer, written_at: int | None = None
    ) -> tuple[str, str] | None:
        """None if the chain lets ``reader`` read ``pointer`` now (latest block), else why not:
        a code (no-grant, revoked, expired, not-yet-valid, out-of-scope, before-grant,
        not-accredited, emergency-not-permitted, delegation-ended) and a sentence.
        ``written_at`` is the record's time (default: the pointer's block timestamp): records
        written before the grant open only under the history rule."""
        reader = to_checksum_address(reader)
        if reader in (pointer.patient, pointer.author):
            return None
        written_at = pointer.timestamp if written_at is None else written_at
        if self.can_read_record(pointer.patient, reader, pointer.category, written_at):
            return None
        grant, now = self.grant_of(pointer.patient, reader), self.now()
        if grant is None:
            revoked = self.chain.events("ConsentManager", "AccessRevoked", patient=pointer.patient, grantee=reader)
            code = "revoked" if revoked else "no-grant"
            return code, "no active grant: " + (
                "the patient revoked it" if revoked else "the patient never granted one"
            )
        if now >= grant.valid_until:
            return "expired", f"its grant expired at {utc(grant.valid_until)} (chain time {utc(now)})"
        if now < grant.valid_from:
            return "not-yet-valid", f"its grant starts at {utc(grant.valid_from)} (chain time {utc(now)})"
        if pointer.category not in grant.scopes:
            return "out-of-scope", (
                f"record {pointer.index} is {pointer.category.name.lower()}, outside the grant's scope"
            )
        if self.can_read(pointer.patient, reader, pointer.category):
            what = {
                GrantKind.EMERGENCY: "an emergency grant opens earlier records only with the patient's "
                "full-history opt-in",
                GrantKind.DELEGATE: "the delegate's terms do not open earlier records",
            }
            return "before-grant", (
                f"record {pointer.index} was written at {utc(written_at)}, before the grant opened at "
                f"{utc(grant.valid_from)}: "
                + what.get(grant.kind, "the grant does not open earlier records")
            )  # fmt: skip
        return self._standing_denial(pointer.patient, reader, grant)

    def _standing_denial(self, patient: str, reader: str, grant: Grant) -> tuple[str, str]:
        """Why a grant inside its window and scope does not hold: what it rests on is gone."""
        if grant.kind == GrantKind.EMERGENCY:
            if not self.chain.call(self.chain.participants.functions.isProvider(reader), "isProvider"):
                return "not-accredited", f"{reader} is no longer an accredited provider"
            return "emergency-not-permitted", "the patient's emergency policy no longer permits this provider"
        if grant.appointment:
            return "delegation-ended", "the delegate who made the grant was removed, and the patient did not keep it"
        return "not-accredited", f"{reader} is no longer an accredited researcher"

    def check_access(self, reader: str, pointer: RecordPointer) -> None:
        """Raises AccessDeniedError with the reason unless ``reader`` may read ``pointer`` now."""
        denial = self.access_denial(reader, pointer)
        if denial is not None:
            raise AccessDeniedError(reader, pointer.patient, denial[1])
