// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";
import {ConsentManager} from "../contracts/ConsentManager.sol";
import {IConsentManager} from "../contracts/interfaces/IConsentManager.sol";

contract ConsentManagerTest is Test {
    ConsentManager internal consent;

    address internal patient = makeAddr("patient");
    address internal provider = makeAddr("provider");
    address internal doctor = makeAddr("doctor");
    address internal stranger = makeAddr("stranger");

    // Timestamps are literal constants: with via_ir, re-reading block.timestamp in the test
    // contract after vm.warp is not reliable.
    uint64 internal constant T0 = 1_750_000_000;
    uint64 internal constant UNTIL = T0 + 30 days;

    bytes internal constant KEYS_CID = hex"01551220cc33cc33cc33cc33cc33cc33cc33cc33cc33cc33cc33cc33cc33cc33cc33cc33";

    function setUp() public {
        vm.warp(T0);
        consent = new ConsentManager();
    }

    function _grant(address patient_, address grantee, uint64 validUntil, bytes memory keysCid) internal {
        vm.expectEmit(true, true, false, true, address(consent));
        emit IConsentManager.AccessGranted(patient_, grantee, validUntil, keysCid);
        vm.prank(patient_);
        consent.grant(grantee, validUntil, keysCid);
    }

    function _revoke(address patient_, address grantee) internal {
        vm.expectEmit(true, true, false, true, address(consent));
        emit IConsentManager.AccessRevoked(patient_, grantee);
        vm.prank(patient_);
        consent.revoke(grantee);
    }

    // ---------------------------------------------------------------- views before any grant

    function test_canRead_FalseWithoutGrant() public view {
        assertFalse(consent.canRead(patient, doctor));
        assertEq(consent.grantOf(patient, doctor), 0);
    }

    function test_canRead_PatientReadsOwnRecords() public view {
        assertTrue(consent.canRead(patient, patient));
        assertEq(consent.grantOf(patient, patient), 0);
    }

    // ---------------------------------------------------------------- grant

    function test_grant_GivesAccess() public {
        vm.expectEmit(true, true, false, true, address(consent));
        emit IConsentManager.AccessGranted(patient, doctor, UNTIL, KEYS_CID);
        vm.prank(patient);
        consent.grant(doctor, UNTIL, KEYS_CID);

        assertTrue(consent.canRead(patient, doctor));
        assertEq(consent.grantOf(patient, doctor), UNTIL);
    }

    function test_grant_EmptyKeysCid() public {
        _grant(patient, doctor, UNTIL, "");
        assertTrue(consent.canRead(patient, doctor));
        assertEq(consent.grantOf(patient, doctor), UNTIL);
    }

    function test_grant_IsDirectional() public {
        _grant(patient, doctor, UNTIL, KEYS_CID);

        // Only this (patient, grantee) pair gains access.
        assertFalse(consent.canRead(doctor, patient));
        assertEq(consent.grantOf(doctor, patient), 0);
        assertFalse(consent.canRead(patient, stranger));
        assertFalse(consent.canRead(stranger, doctor));
    }

    function test_grant_PerPatientIndependent() public {
        _grant(patient, doctor, UNTIL, KEYS_CID);
        _grant(provider, doctor, T0 + 1 days, "");

        assertEq(consent.grantOf(patient, doctor), UNTIL);
        assertEq(consent.grantOf(provider, doctor), T0 + 1 days);

        _revoke(provider, doctor);
        assertFalse(consent.canRead(provider, doctor));
        assertTrue(consent.canRead(patient, doctor));
        assertEq(consent.grantOf(patient, doctor), UNTIL);
    }

    function test_grant_ShortestWindow() public {
        _grant(patient, doctor, T0 + 1, KEYS_CID);
        assertTrue(consent.canRead(patient, doctor));
        vm.warp(T0 + 1);
        assertFalse(consent.canRead(patient, doctor));
    }

    function test_grant_MaxValidUntil() public {
        _grant(patient, doctor, type(uint64).max, KEYS_CID);
        vm.warp(uint256(type(uint64).max) - 1);
        assertTrue(consent.canRead(patient, doctor));
        vm.warp(type(uint64).max);
        assertFalse(consent.canRead(patient, doctor));
    }

    function test_grant_ReGrantExtends() public {
        _grant(patient, doctor, UNTIL, KEYS_CID);

        uint64 later = UNTIL + 60 days;
        bytes memory newKeys = hex"01551220dd44";
        _grant(patient, doctor, later, newKeys);
        assertEq(consent.grantOf(patient, doctor), later);

        vm.warp(UNTIL);
        assertTrue(consent.canRead(patient, doctor));
        vm.warp(later);
        assertFalse(consent.canRead(patient, doctor));
    }

    function test_grant_ReGrantShortens() public {
        _grant(patient, doctor, UNTIL, KEYS_CID);

        uint64 sooner = T0 + 1 days;
        _grant(patient, doctor, sooner, "");
        assertEq(consent.grantOf(patient, doctor), sooner);

        vm.warp(sooner);
        assertFalse(consent.canRead(patient, doctor));
    }

    function test_grant_AfterRevoke() public {
        _grant(patient, doctor, UNTIL, KEYS_CID);
        _revoke(patient, doctor);

        _grant(patient, doctor, T0 + 2 days, KEYS_CID);
        assertTrue(consent.canRead(patient, doctor));
        assertEq(consent.grantOf(patient, doctor), T0 + 2 days);
    }

    function test_grant_AfterExpiry() public {
        _grant(patient, doctor, UNTIL, KEYS_CID);
        vm.warp(UNTIL + 1);
        assertFalse(consent.canRead(patient, doctor));

        uint64 renewed = UNTIL + 30 days;
        _grant(patient, doctor, renewed, KEYS_CID);
        assertTrue(consent.canRead(patient, doctor));
        assertEq(consent.grantOf(patient, doctor), renewed);
    }

    function test_RevertWhen_GrantToZeroAddress() public {
        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidGrantee.selector, address(0)));
        vm.prank(patient);
        consent.grant(address(0), UNTIL, KEYS_CID);
        assertEq(consent.grantOf(patient, address(0)), 0);
        assertFalse(consent.canRead(patient, address(0)));
    }

    function test_RevertWhen_GrantToSelf() public {
        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidGrantee.selector, patient));
        vm.prank(patient);
        consent.grant(patient, UNTIL, KEYS_CID);
        assertEq(consent.grantOf(patient, patient), 0);
    }

    function test_RevertWhen_ExpiryIsNow() public {
        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidExpiry.selector, T0, T0));
        vm.prank(patient);
        consent.grant(doctor, T0, KEYS_CID);
        assertEq(consent.grantOf(patient, doctor), 0);
        assertFalse(consent.canRead(patient, doctor));
    }

    function test_RevertWhen_ExpiryInPast() public {
        vm.expectRevert(
            abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidExpiry.selector, T0 - 1 days, T0)
        );
        vm.prank(patient);
        consent.grant(doctor, T0 - 1 days, KEYS_CID);
        assertEq(consent.grantOf(patient, doctor), 0);
    }

    function test_RevertWhen_ExpiryZero() public {
        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidExpiry.selector, 0, T0));
        vm.prank(patient);
        consent.grant(doctor, 0, KEYS_CID);
        assertEq(consent.grantOf(patient, doctor), 0);
    }

    function test_RevertWhen_ReGrantInPastKeepsGrant() public {
        _grant(patient, doctor, UNTIL, KEYS_CID);

        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidExpiry.selector, T0, T0));
        vm.prank(patient);
        consent.grant(doctor, T0, KEYS_CID);
        assertEq(consent.grantOf(patient, doctor), UNTIL);
        assertTrue(consent.canRead(patient, doctor));
    }

    // ---------------------------------------------------------------- expiry

    function test_canRead_LapsesExactlyAtValidUntil() public {
        _grant(patient, doctor, UNTIL, KEYS_CID);

        vm.warp(UNTIL - 1);
        assertTrue(consent.canRead(patient, doctor));

        vm.warp(UNTIL);
        assertFalse(consent.canRead(patient, doctor));

        vm.warp(UNTIL + 365 days);
        assertFalse(consent.canRead(patient, doctor));
    }

    function test_grantOf_KeepsValidUntilAfterExpiry() public {
        // grantOf reports the stored end of access, also once it has passed (callers compare it with now).
        _grant(patient, doctor, UNTIL, KEYS_CID);
        vm.warp(UNTIL + 1);
        assertEq(consent.grantOf(patient, doctor), UNTIL);
        assertFalse(consent.canRead(patient, doctor));
    }

    // ---------------------------------------------------------------- revoke

    function test_revoke_ClearsGrant() public {
        _grant(patient, doctor, UNTIL, KEYS_CID);

        vm.expectEmit(true, true, false, true, address(consent));
        emit IConsentManager.AccessRevoked(patient, doctor);
        vm.prank(patient);
        consent.revoke(doctor);

        assertFalse(consent.canRead(patient, doctor));
        assertEq(consent.grantOf(patient, doctor), 0);
    }

    function test_revoke_OnlyThatGrantee() public {
        _grant(patient, doctor, UNTIL, KEYS_CID);
        _grant(patient, provider, UNTIL, KEYS_CID);

        _revoke(patient, doctor);
        assertFalse(consent.canRead(patient, doctor));
        assertTrue(consent.canRead(patient, provider));
        assertEq(consent.grantOf(patient, provider), UNTIL);
    }

    function test_revoke_LastSecondOfGrant() public {
        _grant(patient, doctor, UNTIL, KEYS_CID);
        vm.warp(UNTIL - 1);
        _revoke(patient, doctor);
        assertEq(consent.grantOf(patient, doctor), 0);
    }

    function test_RevertWhen_RevokeWithoutGrant() public {
        vm.expectRevert(
            abi.encodeWithSelector(IConsentManager.ConsentManagerNoActiveGrant.selector, patient, doctor)
        );
        vm.prank(patient);
        consent.revoke(doctor);
    }

    function test_RevertWhen_RevokeTwice() public {
        _grant(patient, doctor, UNTIL, KEYS_CID);
        _revoke(patient, doctor);

        vm.expectRevert(
            abi.encodeWithSelector(IConsentManager.ConsentManagerNoActiveGrant.selector, patient, doctor)
        );
        vm.prank(patient);
        consent.revoke(doctor);
    }

    function test_RevertWhen_RevokeExpiredGrant() public {
        _grant(patient, doctor, UNTIL, KEYS_CID);
        vm.warp(UNTIL);

        vm.expectRevert(
            abi.encodeWithSelector(IConsentManager.ConsentManagerNoActiveGrant.selector, patient, doctor)
        );
        vm.prank(patient);
        consent.revoke(doctor);
        // The lapsed grant is left as it was.
        assertEq(consent.grantOf(patient, doctor), UNTIL);
    }

    function test_RevertWhen_StrangerRevokesPatientsGrant() public {
        _grant(patient, doctor, UNTIL, KEYS_CID);

        // revoke acts on the caller's own grants: the stranger has none to the doctor.
        vm.expectRevert(
            abi.encodeWithSelector(IConsentManager.ConsentManagerNoActiveGrant.selector, stranger, doctor)
        );
        vm.prank(stranger);
        consent.revoke(doctor);
        assertTrue(consent.canRead(patient, doctor));
        assertEq(consent.grantOf(patient, doctor), UNTIL);
    }

    function test_RevertWhen_GranteeRevokesOwnAccess() public {
        _grant(patient, doctor, UNTIL, KEYS_CID);

        vm.expectRevert(
            abi.encodeWithSelector(IConsentManager.ConsentManagerNoActiveGrant.selector, doctor, patient)
        );
        vm.prank(doctor);
        consent.revoke(patient);
        assertTrue(consent.canRead(patient, doctor));
    }

    // ---------------------------------------------------------------- fuzz

    function testFuzz_canRead_WindowBoundary(uint256 start, uint256 duration, uint256 elapsed) public {
        uint64 from = uint64(bound(start, 1, type(uint64).max - 1));
        uint64 until = uint64(bound(duration, 1, type(uint64).max - from)) + from;
        uint256 at = bound(elapsed, from, type(uint64).max);

        vm.warp(from);
        _grant(patient, doctor, until, KEYS_CID);
        assertEq(consent.grantOf(patient, doctor), until);

        vm.warp(at);
        assertEq(consent.canRead(patient, doctor), at < until);
        // The patient always reads their own records.
        assertTrue(consent.canRead(patient, patient));
    }

    function testFuzz_RevertWhen_ExpiryNotInFuture(uint256 validUntil) public {
        uint64 until = uint64(bound(validUntil, 0, T0));
        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidExpiry.selector, until, T0));
        vm.prank(patient);
        consent.grant(doctor, until, KEYS_CID);
        assertEq(consent.grantOf(patient, doctor), 0);
    }

    function testFuzz_revoke_OnlyWhileActive(uint256 duration, uint256 elapsed) public {
        uint64 until = T0 + uint64(bound(duration, 1, 365 days));
        uint256 at = bound(elapsed, T0, uint256(until) + 365 days);

        _grant(patient, doctor, until, KEYS_CID);
        vm.warp(at);

        if (at < until) {
            _revoke(patient, doctor);
            assertEq(consent.grantOf(patient, doctor), 0);
        } else {
            vm.expectRevert(
                abi.encodeWithSelector(IConsentManager.ConsentManagerNoActiveGrant.selector, patient, doctor)
            );
            vm.prank(patient);
            consent.revoke(doctor);
            assertEq(consent.grantOf(patient, doctor), until);
        }
        assertFalse(consent.canRead(patient, doctor));
    }
}
