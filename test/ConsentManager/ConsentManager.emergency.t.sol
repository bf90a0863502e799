// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IConsentManager} from "../../contracts/interfaces/IConsentManager.sol";
import {ConsentManagerBase} from "../utils/ConsentManagerBase.sol";
import {ConsentSig} from "../utils/ConsentSig.sol";

/// @notice Emergency access by accredited providers.
contract ConsentManagerEmergencyTest is ConsentManagerBase {
    // ---------------------------------------------------------------- takeEmergencyAccess

    function test_takeEmergencyAccess_GrantsAllForOneDay() public {
        vm.expectEmit(true, true, true, true, address(cm));
        emit IConsentManager.EmergencyAccessTaken(patient, provider, T0 + 24 hours, "unconscious in ER");
        vm.prank(provider);
        cm.takeEmergencyAccess(patient, "unconscious in ER");

        _assertGrant(patient, provider, T0, T0 + 24 hours, ALL, ETREAT, true, 0);
        for (uint8 c; c < 6; ++c) {
            assertTrue(cm.canRead(patient, provider, c));
        }
        vm.warp(T0 + 24 hours - 1);
        assertTrue(cm.canRead(patient, provider, NOTES));
        vm.warp(T0 + 24 hours);
        _assertNoAccess(patient, provider);
    }

    function test_takeEmergencyAccess_ReplacesExistingGrant() public {
        _grantDirect(provider, SCOPES, FROM, UNTIL);
        vm.prank(provider);
        cm.takeEmergencyAccess(patient, "cardiac arrest");
        _assertGrant(patient, provider, T0, T0 + 24 hours, ALL, ETREAT, true, 1);
    }

    function test_revoke_EndsEmergencyAccess() public {
        vm.prank(provider);
        cm.takeEmergencyAccess(patient, "unconscious in ER");

        vm.expectEmit(true, true, true, true, address(cm));
        emit IConsentManager.AccessRevoked(patient, provider);
        _revokeDirect(provider);
        _assertNoAccess(patient, provider);
        _assertGrant(patient, provider, 0, 0, 0, 0, false, 1);
    }

    function test_grant_ClearsEmergencyFlag() public {
        vm.prank(provider);
        cm.takeEmergencyAccess(patient, "unconscious in ER");
        _grantDirect(provider, SCOPES, FROM, UNTIL);
        _assertGrant(patient, provider, FROM, UNTIL, SCOPES, TREAT, false, 1);
    }

    function test_revokeBySig_StillEndsEmergencyAccessTakenAfterSigning() public {
        // The patient (or a guardian) signs a revoke of the provider; the provider then takes
        // emergency access. Emergency access must not void the pending revoke by moving the nonce.
        IConsentManager.Authorization memory auth =
            _sign(patientPk, ConsentSig.revokeHash(patient, provider, 0, DEADLINE), 0);
        vm.prank(provider);
        cm.takeEmergencyAccess(patient, "unconscious in ER");
        assertEq(cm.grantOf(patient, provider).nonce, 0);

        vm.prank(relayer);
        cm.revokeBySig(patient, provider, auth);

        assertFalse(cm.canRead(patient, provider, 0));
        assertEq(cm.grantOf(patient, provider).nonce, 1);
    }

    function test_RevertWhen_EmergencyByNonProvider() public {
        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerNotProvider.selector, stranger));
        vm.prank(stranger);
        cm.takeEmergencyAccess(patient, "unconscious in ER");

        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerNotProvider.selector, researcher));
        vm.prank(researcher);
        cm.takeEmergencyAccess(patient, "unconscious in ER");
        _assertNoAccess(patient, stranger);
        _assertNoAccess(patient, researcher);
    }

    function test_RevertWhen_EmergencyWithoutReason() public {
        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerMissingReason.selector));
        vm.prank(provider);
        cm.takeEmergencyAccess(patient, "");
        _assertNoAccess(patient, provider);
    }

    function test_RevertWhen_EmergencyOnOwnRecords() public {
        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidGrantee.selector, provider));
        vm.prank(provider);
        cm.takeEmergencyAccess(provider, "self");
        assertEq(cm.grantOf(provider, provider).nonce, 0);
    }
}
