"""The patient's emergency policy, delegates' terms, cancellable signatures and expiring
requests, end to end on anvil and Kubo (the review's C-1, H-3, L-1 and L-5), through the
client and the keepers' access check (``access_denial``, which asks ``canReadRecord``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from data import ALL, DAY, LAB, LABS
from helpers import add, refused
from test_keepers import keeper_wallets, keepers, refusal_codes, three  # noqa: F401 - the keepers fixtures

from medvault.errors import AccessDeniedError, ConfigurationError, ContractError
from medvault.model import (
    Category,
    DelegateTerms,
    EmergencyMode,
    EmergencyStanding,
    GrantKind,
    GrantTerms,
    Purpose,
    Role,
)

if TYPE_CHECKING:
    from helpers import ChainClock

    from medvault.accounts import Wallet
    from medvault.client import Medvault

pytestmark = pytest.mark.integration


def test_any_provider_taking_emergency_access_to_any_address_is_refused(
    mv: Medvault, provider: Wallet, patient: Wallet, stranger: Wallet
) -> None:
    # No policy set: nobody may break the glass, on a patient or on an address that is nobody.
    for target in (patient.address, stranger.address):
        with pytest.raises(ContractError) as refused:
            mv.take_emergency_access(provider, target, "x")
        assert refused.value.name == "ConsentManagerEmergencyNotPermitted"
    assert mv.grant_of(patient.address, provider.address) is None


def test_emergency_retaken_after_revoke_is_refused_until_the_patient_allows_again(
    mv: Medvault, provider: Wallet, patient: Wallet
) -> None:
    mv.set_emergency_policy(patient, EmergencyMode.ANY)
    mv.take_emergency_access(provider, patient.address, "unconscious in ER")
    mv.revoke(patient, patient.address, provider.address)
    assert mv.emergency_standing(patient.address, provider.address) is EmergencyStanding.BLOCKED
    with refused("ConsentManagerEmergencyNotPermitted"):
        mv.take_emergency_access(provider, patient.address, "again")

    mv.set_emergency_standing(patient, provider.address, EmergencyStanding.ALLOWED)
    mv.take_emergency_access(provider, patient.address, "again, allowed")
    assert mv.can_read(patient.address, provider.address, Category.NOTES)


def test_emergency_daily_renewal_is_refused(mv: Medvault, provider: Wallet, patient: Wallet, clock: ChainClock) -> None:
    mv.set_emergency_policy(patient, EmergencyMode.ANY)
    mv.take_emergency_access(provider, patient.address, "day 1")
    clock.advance(DAY)
    with pytest.raises(ContractError) as refused:
        mv.take_emergency_access(provider, patient.address, "day 2")
    assert refused.value.name == "ConsentManagerEmergencyCooldown"
    assert not mv.can_read(patient.address, provider.address, Category.LABORATORY)


def test_emergency_opens_earlier_records_only_with_full_history_and_is_flagged(
    mv: Medvault, provider: Wallet, patient: Wallet, clock: ChainClock
) -> None:
    earlier = add(mv, patient, patient)  # the patient's own record, written before the emergency
    clock.advance(1)  # a record of the grant's own second counts as inside its window
    mv.set_emergency_policy(patient, EmergencyMode.NAMED, scopes=LABS)
    mv.set_emergency_standing(patient, provider.address, EmergencyStanding.ALLOWED)
    mv.take_emergency_access(provider, patient.address, "unconscious in ER\x1b[2J\nAccessRevoked by patient")

    # What every keeper asks before releasing a share: refused, and why.
    denial = mv.access_denial(provider.address, earlier)
    assert denial is not None
    assert denial[0] == "before-grant"
    assert "full-history" in denial[1]
    with pytest.raises(AccessDeniedError, match="before the grant opened"):
        mv.read_record(provider, patient.address, earlier.index)

    mv.set_emergency_policy(patient, EmergencyMode.NAMED, scopes=LABS, full_history=True)
    assert mv.access_denial(provider.address, earlier) is None

    grant = mv.grant_of(patient.address, provider.address)
    assert grant is not None
    assert grant.kind is GrantKind.EMERGENCY
    assert grant.scopes == LABS
    taken = [e for e in mv.audit(patient.address) if e.event == "EmergencyAccessTaken"]
    assert taken[0].details["scopes"] == 1
    assert [e.event for e in mv.audit(patient.address)].count("EmergencyStandingSet") == 1


def test_emergency_kept_after_losing_accreditation_is_refused(
    mv: Medvault, provider: Wallet, patient: Wallet, admin: Wallet
) -> None:
    record = add(mv, patient, patient)
    mv.set_emergency_policy(patient, EmergencyMode.ANY, full_history=True)
    mv.take_emergency_access(provider, patient.address, "unconscious in ER")
    assert mv.access_denial(provider.address, record) is None

    role = mv.chain.participants.functions.PROVIDER_ROLE().call()
    mv.chain.transact(admin, mv.chain.participants.functions.revokeRole(role, provider.address), "withdraw")

    assert mv.access_denial(provider.address, record) == (
        "not-accredited", f"{provider.address} is no longer an accredited provider"
    )  # fmt: skip


def test_delegate_self_grant_and_grants_beyond_its_terms_are_refused(
    mv: Medvault, patient: Wallet, doctor: Wallet, stranger: Wallet
) -> None:
    guardian = stranger
    mv.set_delegate(patient, guardian.address, terms=DelegateTerms(LABS, 7 * DAY))
    now = mv.now()
    with refused("ConsentManagerDelegateSelfGrant"):
        mv.grant(guardian, patient.address, guardian.address, GrantTerms(LABS, Purpose.TREAT, now, now + DAY))
    with refused("ConsentManagerOutsideDelegateTerms"):
        mv.grant(guardian, patient.address, doctor.address, GrantTerms(ALL, Purpose.TREAT, now, now + DAY))
    with refused("ConsentManagerOutsideDelegateTerms"):
        mv.grant(guardian, patient.address, doctor.address, GrantTerms(LABS, Purpose.TREAT, now, 2**40 - 1))
    assert mv.grant_of(patient.address, doctor.address) is None


def test_delegate_grant_opens_no_earlier_record_and_ends_with_the_delegate(
    mv: Medvault, provider: Wallet, patient: Wallet, doctor: Wallet, stranger: Wallet, clock: ChainClock
) -> None:
    guardian = stranger
    before = add(mv, provider, patient)
    clock.advance(1)
    mv.set_delegate(patient, guardian.address, terms=DelegateTerms(LABS, 7 * DAY))
    now = mv.now()
    mv.grant(guardian, patient.address, doctor.address, GrantTerms(LABS, Purpose.TREAT, 0, now + DAY))
    grant = mv.grant_of(patient.address, doctor.address)
    assert grant is not None
    assert grant.kind is GrantKind.DELEGATE
    assert grant.valid_from >= now  # a back-dated window opens when the grant is made
    # What the keepers ask: a record from before the delegate's grant is not released.
    denial = mv.access_denial(doctor.address, before)
    assert denial is not None
    assert denial[0] == "before-grant"
    after = add(mv, provider, patient)
    assert mv.read_record(doctor, patient.address, after.index).data == LAB

    mv.set_delegate(patient, guardian.address, appoint=False)
    assert not mv.can_read(patient.address, doctor.address, Category.LABORATORY)
    denial = mv.access_denial(doctor.address, after)
    assert denial is not None
    assert denial[0] == "delegation-ended"
    with pytest.raises(AccessDeniedError, match="delegate who made the grant was removed"):
        mv.read_record(doctor, patient.address, after.index)


def test_reappointment_reviving_old_delegate_signatures_is_refused(
    mv: Medvault, patient: Wallet, doctor: Wallet, stranger: Wallet
) -> None:
    guardian = stranger
    mv.set_delegate(patient, guardian.address)
    now = mv.now()
    signed = mv.sign(guardian, mv.grant_change(guardian, patient.address, doctor.address,
                                               GrantTerms(LABS, Purpose.TREAT, now, now + DAY)))  # fmt: skip
    assert int(signed.typed_data["message"]["nonce"]) >> 64 == 1  # bound to appointment 1 (a string: beyond 2^53)
    mv.set_delegate(patient, guardian.address, appoint=False)
    mv.set_delegate(patient, guardian.address)
    with pytest.raises(ConfigurationError, match="signed under an earlier appointment"):
        mv.relay(doctor, signed)
    assert mv.grant_of(patient.address, doctor.address) is None


def test_signature_cancelled_without_granting(mv: Medvault, patient: Wallet, doctor: Wallet) -> None:
    now = mv.now()
    signed = mv.sign(patient, mv.grant_change(patient, patient.address, doctor.address,
                                              GrantTerms(LABS, Purpose.TREAT, now, now + DAY)))  # fmt: skip
    mv.invalidate_nonce(patient, patient.address, doctor.address)
    with pytest.raises(ConfigurationError, match="voided by a later change"):
        mv.relay(doctor, signed)
    assert mv.grant_of(patient.address, doctor.address) is None
    assert "NonceInvalidated" in [e.event for e in mv.audit(patient.address)]


def test_research_request_expires_and_needs_accreditation(
    mv: Medvault, patient: Wallet, doctor: Wallet, admin: Wallet, clock: ChainClock
) -> None:
    researcher = doctor
    mv.accredit(admin, researcher.address, Role.RESEARCHER)
    old, _ = mv.request_access(researcher, patient.address, LABS, Purpose.HRESCH, DAY, "OLD")
    clock.advance(30 * DAY)
    assert mv.request_expired(old)
    with refused("ConsentManagerRequestExpired"):
        mv.decide_request(patient, old, approve=True)

    fresh, _ = mv.request_access(researcher, patient.address, LABS, Purpose.HRESCH, DAY, "NEW")
    mv.decide_request(patient, fresh, approve=True)
    grant = mv.grant_of(patient.address, researcher.address)
    assert grant is not None
    assert grant.kind is GrantKind.RESEARCH
    assert mv.can_read(patient.address, researcher.address, Category.LABORATORY)
    role = mv.chain.participants.functions.RESEARCHER_ROLE().call()
    mv.chain.transact(admin, mv.chain.participants.functions.revokeRole(role, researcher.address), "withdraw")
    assert not mv.can_read(patient.address, researcher.address, Category.LABORATORY)


@pytest.mark.usefixtures("three")  # three keepers, any two of which release the patient's keys
def test_keepers_release_no_record_from_before_an_emergency_without_full_history(
    mv: Medvault, provider: Wallet, patient: Wallet, doctor: Wallet, stranger: Wallet,
    clock: ChainClock,
) -> None:  # fmt: skip
    # The review's C-1 through the keepers: an emergency grant opened every earlier record.
    earlier = add(mv, patient, patient)
    clock.advance(1)
    mv.set_emergency_policy(patient, EmergencyMode.ANY)
    mv.take_emergency_access(provider, patient.address, "unconscious in ER")
    assert refusal_codes(mv, provider, earlier) == ["before-grant"] * 3
    mv.set_emergency_policy(patient, EmergencyMode.ANY, full_history=True)
    assert mv.release_key(provider, earlier)

    # H-3 through the keepers: a delegate's grant opened records from before it.
    mv.set_delegate(patient, stranger.address, terms=DelegateTerms(LABS, 7 * DAY))
    now = mv.now()
    mv.grant(stranger, patient.address, doctor.address, GrantTerms(LABS, Purpose.TREAT, now, now + DAY))
    assert refusal_codes(mv, doctor, earlier) == ["before-grant"] * 3
    mv.set_delegate(patient, stranger.address, appoint=False)
    assert refusal_codes(mv, doctor, earlier) == ["delegation-ended"] * 3
