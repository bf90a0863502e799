// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Vm} from "forge-std/Test.sol";
import {IConsentManager} from "../../contracts/interfaces/IConsentManager.sol";
import {ConsentManagerBase} from "../utils/ConsentManagerBase.sol";

/// @notice Direct grants, key sharing, `canRead` and revokes.
contract ConsentManagerGrantTest is ConsentManagerBase {
    // ---------------------------------------------------------------- constructor / constants

    function test_constructor_SetsParticipantsAndConstants() public view {
        assertEq(address(cm.participants()), address(participants));
        assertEq(cm.ALL_CATEGORIES(), 0x3f);
        assertEq(cm.PURPOSE_COUNT(), 8);
        assertEq(cm.PURPOSE_ETREAT(), 1);
        assertEq(cm.EMERGENCY_DURATION(), 24 hours);
        assertEq(cm.MAX_REQUEST_DURATION(), 365 days);
    }

    // ---------------------------------------------------------------- grant

    function test_grant_StoresGrantAndEmits() public {
        vm.expectEmit(true, true, true, true, address(cm));
        emit IConsentManager.AccessGranted(patient, doctor, SCOPES, TREAT, FROM, UNTIL);
        vm.expectEmit(true, true, true, true, address(cm));
        emit IConsentManager.KeysShared(patient, doctor, KEYS_CID);
        vm.prank(patient);
        cm.grant(doctor, SCOPES, TREAT, FROM, UNTIL, KEYS_CID);

        _assertGrant(patient, doctor, FROM, UNTIL, SCOPES, TREAT, false, 1);
        assertTrue(cm.canRead(patient, doctor, LABORATORY));
        assertTrue(cm.canRead(patient, doctor, MEDICATIONS));
    }

    function test_grant_NoKeysSharedWhenKeysCidEmpty() public {
        vm.recordLogs();
        vm.prank(patient);
        cm.grant(doctor, SCOPES, TREAT, FROM, UNTIL, "");
        Vm.Log[] memory logs = vm.getRecordedLogs();
        assertEq(logs.length, 1, "only AccessGranted");
        assertEq(logs[0].topics[0], IConsentManager.AccessGranted.selector);
        assertEq(logs[0].emitter, address(cm));
    }

    function test_grant_KeysSharedWhenKeysCidGiven() public {
        vm.recordLogs();
        vm.prank(patient);
        cm.grant(doctor, SCOPES, TREAT, FROM, UNTIL, KEYS_CID);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        assertEq(logs.length, 2);
        assertEq(logs[1].topics[0], IConsentManager.KeysShared.selector);
        assertEq(abi.decode(logs[1].data, (bytes)), KEYS_CID);
    }

    // ---------------------------------------------------------------- shareKeys

    function test_shareKeys_EmitsKeysShared() public {
        vm.expectEmit(true, true, true, true, address(cm));
        emit IConsentManager.KeysShared(patient, doctor, KEYS_CID);
        vm.prank(patient);
        cm.shareKeys(doctor, KEYS_CID);
    }

    function test_shareKeys_ToSelfAnnouncesRotation() public {
        vm.expectEmit(true, true, true, true, address(cm));
        emit IConsentManager.KeysShared(patient, patient, KEYS_CID);
        vm.prank(patient);
        cm.shareKeys(patient, KEYS_CID);
    }

    function test_shareKeys_GrantsNothingAndKeepsNonces() public {
        vm.recordLogs();
        vm.prank(patient);
        cm.shareKeys(doctor, KEYS_CID);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        assertEq(logs.length, 1, "only KeysShared");
        assertEq(logs[0].topics[0], IConsentManager.KeysShared.selector);
        assertEq(logs[0].topics[1], bytes32(uint256(uint160(patient))));
        assertEq(logs[0].topics[2], bytes32(uint256(uint160(doctor))));
        assertEq(abi.decode(logs[0].data, (bytes)), KEYS_CID);
        _assertNoAccess(patient, doctor);
        _assertGrant(patient, doctor, 0, 0, 0, 0, false, 0);
    }

    function test_RevertWhen_ShareKeysWithEmptyCid() public {
        vm.expectRevert(IConsentManager.ConsentManagerEmptyKeysCid.selector);
        vm.prank(patient);
        cm.shareKeys(doctor, "");
    }

    function test_RevertWhen_KeysCidMalformed() public {
        bytes[] memory bad = _malformedCids();
        vm.startPrank(patient);
        // The empty one is no key bundle: a grant may come without one (shareKeys refuses it above).
        for (uint256 i = 1; i < bad.length; ++i) {
            vm.expectRevert(_invalidCid(bad[i]));
            cm.grant(doctor, SCOPES, TREAT, FROM, UNTIL, bad[i]);
            vm.expectRevert(_invalidCid(bad[i]));
            cm.shareKeys(doctor, bad[i]);
            vm.expectRevert(_invalidCid(bad[i]));
            cm.shareKeys(patient, bad[i]); // a key rotation's re-wrap
        }
        vm.stopPrank();
        _assertNoAccess(patient, doctor);
        _assertGrant(patient, doctor, 0, 0, 0, 0, false, 0);
    }

    function test_RevertWhen_ShareKeysWithZeroGrantee() public {
        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidGrantee.selector, address(0)));
        vm.prank(patient);
        cm.shareKeys(address(0), KEYS_CID);
    }

    // ---------------------------------------------------------------- canRead and grant terms

    function test_canRead_PatientReadsOwnRecords() public view {
        for (uint8 c; c < 8; ++c) {
            assertTrue(cm.canRead(patient, patient, c));
        }
        _assertNoAccess(patient, doctor);
    }

    function test_canRead_ActiveOnlyInsideWindow() public {
        uint40 from = T0 + 2 days;
        uint40 until = T0 + 5 days;
        _grantDirect(doctor, ALL, from, until);

        // Future-dated: recorded but not yet active.
        assertFalse(cm.canRead(patient, doctor, LABORATORY));
        vm.warp(from - 1);
        assertFalse(cm.canRead(patient, doctor, LABORATORY));
        vm.warp(from);
        assertTrue(cm.canRead(patient, doctor, LABORATORY));
        vm.warp(until - 1);
        assertTrue(cm.canRead(patient, doctor, LABORATORY));
        // Ends exactly at validUntil.
        vm.warp(until);
        assertFalse(cm.canRead(patient, doctor, LABORATORY));
    }

    function test_grant_ValidFromInThePastStartsNow() public {
        _grantDirect(doctor, SCOPES, T0 - 10 days, UNTIL);
        _assertGrant(patient, doctor, T0 - 10 days, UNTIL, SCOPES, TREAT, false, 1);
        assertTrue(cm.canRead(patient, doctor, LABORATORY));
    }

    function test_canRead_OnlyGrantedCategories() public {
        for (uint8 bit; bit < 6; ++bit) {
            address grantee = address(uint160(0x1000 + bit));
            _grantDirect(grantee, uint8(1 << bit), FROM, UNTIL);
            for (uint8 c; c < 8; ++c) {
                assertEq(cm.canRead(patient, grantee, c), c == bit);
            }
        }
    }

    function test_grant_RegrantNarrowsScope() public {
        _grantDirect(doctor, ALL, FROM, UNTIL);
        assertTrue(cm.canRead(patient, doctor, NOTES));

        _grantDirect(doctor, uint8(1 << LABORATORY), FROM, UNTIL);
        _assertGrant(patient, doctor, FROM, UNTIL, uint8(1 << LABORATORY), TREAT, false, 2);
        assertTrue(cm.canRead(patient, doctor, LABORATORY));
        assertFalse(cm.canRead(patient, doctor, NOTES));
        assertFalse(cm.canRead(patient, doctor, IMAGING));
    }

    function test_grant_RegrantExtendsWindow() public {
        _grantDirect(doctor, SCOPES, FROM, UNTIL);
        _grantDirect(doctor, SCOPES, FROM, UNTIL + 30 days);
        _assertGrant(patient, doctor, FROM, UNTIL + 30 days, SCOPES, TREAT, false, 2);
        vm.warp(UNTIL);
        assertTrue(cm.canRead(patient, doctor, LABORATORY));
        vm.warp(UNTIL + 30 days);
        assertFalse(cm.canRead(patient, doctor, LABORATORY));
    }

    function test_grant_RegrantShortensWindow() public {
        _grantDirect(doctor, SCOPES, FROM, UNTIL);
        _grantDirect(doctor, SCOPES, FROM, T0 + 1 days);
        vm.warp(T0 + 1 days);
        assertFalse(cm.canRead(patient, doctor, LABORATORY));
    }

    function test_grant_PerPatientAndPerGrantee() public {
        _grantDirect(doctor, SCOPES, FROM, UNTIL);
        _assertNoAccess(patient2, doctor);
        _assertNoAccess(patient, researcher);
        assertEq(cm.grantOf(patient, researcher).nonce, 0);
    }

    function test_RevertWhen_GranteeIsZero() public {
        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidGrantee.selector, address(0)));
        vm.prank(patient);
        cm.grant(address(0), SCOPES, TREAT, FROM, UNTIL, "");
        _assertGrant(patient, address(0), 0, 0, 0, 0, false, 0);
    }

    function test_RevertWhen_GranteeIsPatient() public {
        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidGrantee.selector, patient));
        vm.prank(patient);
        cm.grant(patient, SCOPES, TREAT, FROM, UNTIL, "");
        _assertGrant(patient, patient, 0, 0, 0, 0, false, 0);
    }

    function test_RevertWhen_ScopesZero() public {
        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidScopes.selector, uint8(0)));
        vm.prank(patient);
        cm.grant(doctor, 0, TREAT, FROM, UNTIL, "");
        assertEq(cm.grantOf(patient, doctor).nonce, 0);
    }

    function test_RevertWhen_ScopesNameUnknownCategory() public {
        uint8[3] memory bad = [uint8(0x40), 0x80, 0x41];
        for (uint256 i; i < bad.length; ++i) {
            vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidScopes.selector, bad[i]));
            vm.prank(patient);
            cm.grant(doctor, bad[i], TREAT, FROM, UNTIL, "");
        }
        assertEq(cm.grantOf(patient, doctor).nonce, 0);
    }

    function test_RevertWhen_PurposeOutOfRange() public {
        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidPurpose.selector, uint8(8)));
        vm.prank(patient);
        cm.grant(doctor, SCOPES, 8, FROM, UNTIL, "");

        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidPurpose.selector, uint8(255)));
        vm.prank(patient);
        cm.grant(doctor, SCOPES, 255, FROM, UNTIL, "");
        assertEq(cm.grantOf(patient, doctor).nonce, 0);

        // The last purpose code is accepted.
        vm.prank(patient);
        cm.grant(doctor, SCOPES, 7, FROM, UNTIL, "");
        assertEq(cm.grantOf(patient, doctor).purpose, 7);
    }

    /// The patient grants the doctor [validFrom, validUntil) at T0 and is refused; nothing changes.
    function _assertWindowRefused(uint40 validFrom, uint40 validUntil) internal {
        vm.expectRevert(
            abi.encodeWithSelector(
                IConsentManager.ConsentManagerInvalidWindow.selector, validFrom, validUntil, uint256(T0)
            )
        );
        vm.prank(patient);
        cm.grant(doctor, SCOPES, TREAT, validFrom, validUntil, "");
        assertEq(cm.grantOf(patient, doctor).nonce, 0);
    }

    function test_RevertWhen_WindowEmpty() public {
        _assertWindowRefused(UNTIL, UNTIL);
    }

    function test_RevertWhen_WindowInverted() public {
        _assertWindowRefused(UNTIL, FROM);
    }

    function test_RevertWhen_WindowAlreadyOver() public {
        // validUntil == now: the window [from, now) has no instant left.
        _assertWindowRefused(T0 - 10, T0);

        // One second more is a valid (one-second) grant.
        _grantDirect(doctor, SCOPES, T0 - 10, T0 + 1);
        assertTrue(cm.canRead(patient, doctor, LABORATORY));
    }

    function test_grant_DelegateDirectCallGrantsOwnRecordsOnly() public {
        _appointDelegate();

        // A direct grant always acts for msg.sender, never for the patient a delegate serves.
        vm.prank(delegate);
        cm.grant(doctor, SCOPES, TREAT, FROM, UNTIL, "");
        _assertGrant(delegate, doctor, FROM, UNTIL, SCOPES, TREAT, false, 1);
        _assertGrant(patient, doctor, 0, 0, 0, 0, false, 0);
        assertFalse(cm.canRead(patient, doctor, LABORATORY));
    }

    // ---------------------------------------------------------------- revoke

    /// `patient_` revokes `grantee` and is refused: no current or future grant.
    function _assertRevokeRefused(address patient_, address grantee) internal {
        vm.expectRevert(
            abi.encodeWithSelector(IConsentManager.ConsentManagerNoActiveGrant.selector, patient_, grantee)
        );
        vm.prank(patient_);
        cm.revoke(grantee);
    }

    function test_revoke_EndsAccessImmediately() public {
        _grantDirect(doctor, ALL, FROM, UNTIL);
        assertTrue(cm.canRead(patient, doctor, LABORATORY));

        vm.expectEmit(true, true, true, true, address(cm));
        emit IConsentManager.AccessRevoked(patient, doctor);
        _revokeDirect(doctor);

        _assertNoAccess(patient, doctor);
        _assertGrant(patient, doctor, 0, 0, 0, 0, false, 2);
        vm.warp(T0 + 1 days);
        _assertNoAccess(patient, doctor);
    }

    function test_revoke_FutureDatedGrant() public {
        uint40 from = T0 + 7 days;
        _grantDirect(doctor, ALL, from, from + 7 days);

        _revokeDirect(doctor);

        vm.warp(from);
        _assertNoAccess(patient, doctor);
        assertEq(cm.grantOf(patient, doctor).nonce, 2);
    }

    function test_revoke_KeepsNonceAndRegrantContinuesIt() public {
        _grantDirect(doctor, SCOPES, FROM, UNTIL);
        assertEq(cm.grantOf(patient, doctor).nonce, 1);
        _revokeDirect(doctor);
        assertEq(cm.grantOf(patient, doctor).nonce, 2);

        // A new grant restores access and continues the nonce (the slot was not deleted).
        _grantDirect(doctor, SCOPES, FROM, UNTIL);
        _assertGrant(patient, doctor, FROM, UNTIL, SCOPES, TREAT, false, 3);
        assertTrue(cm.canRead(patient, doctor, LABORATORY));
    }

    function test_RevertWhen_RevokeWithoutGrant() public {
        _assertRevokeRefused(patient, doctor);
        assertEq(cm.grantOf(patient, doctor).nonce, 0);
    }

    function test_RevertWhen_RevokeTwice() public {
        _grantDirect(doctor, SCOPES, FROM, UNTIL);
        _revokeDirect(doctor);

        _assertRevokeRefused(patient, doctor);
        assertEq(cm.grantOf(patient, doctor).nonce, 2);
    }

    function test_RevertWhen_RevokeExpiredGrant() public {
        _grantDirect(doctor, SCOPES, FROM, UNTIL);
        vm.warp(UNTIL);
        _assertRevokeRefused(patient, doctor);
        assertEq(cm.grantOf(patient, doctor).nonce, 1);
    }

    function test_RevertWhen_RevokeAnotherPatientsGrant() public {
        // A grantee "revoking" acts on its own (empty) relationship, not the patient's.
        _grantDirect(doctor, SCOPES, FROM, UNTIL);
        _assertRevokeRefused(stranger, doctor);
        assertTrue(cm.canRead(patient, doctor, LABORATORY));
    }

    // ---------------------------------------------------------------- fuzz

    function testFuzz_canRead_IffInsideWindow(uint256 validFrom, uint256 validUntil, uint256 t) public {
        uint40 from = uint40(bound(validFrom, 0, T0 + 365 days));
        uint40 lowestUntil = (from > T0 ? from : T0) + 1;
        uint40 until = uint40(bound(validUntil, lowestUntil, T0 + 2 * 365 days));
        uint40 at = uint40(bound(t, T0, T0 + 3 * 365 days));

        _grantDirect(doctor, ALL, from, until);
        vm.warp(at);
        bool inside = from <= at && at < until;
        for (uint8 c; c < 6; ++c) {
            assertEq(cm.canRead(patient, doctor, c), inside);
        }
    }

    function testFuzz_canRead_IffScopeBitSet(uint256 scopes, uint256 category) public {
        uint8 s = uint8(bound(scopes, 1, ALL));
        uint8 c = uint8(bound(category, 0, type(uint8).max));
        _grantDirect(doctor, s, FROM, UNTIL);
        assertEq(cm.canRead(patient, doctor, c), c < 8 && (s >> c) & 1 == 1);
    }

    function testFuzz_RevertWhen_ScopesInvalid(uint256 scopes) public {
        // 0, or any mask with a bit above the sixth category.
        uint8 s = uint8(bound(scopes, ALL, type(uint8).max));
        if (s == ALL) s = 0;
        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidScopes.selector, s));
        vm.prank(patient);
        cm.grant(doctor, s, TREAT, FROM, UNTIL, "");
    }
}
