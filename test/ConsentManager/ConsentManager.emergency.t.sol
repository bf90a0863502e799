// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IConsentManager} from "../../contracts/interfaces/IConsentManager.sol";
import {ConsentManagerBase} from "../utils/ConsentManagerBase.sol";
import {ConsentSig} from "../utils/ConsentSig.sol";

/// @notice Emergency (break-glass) access under the patient's policy. The attack tests are named
/// for the review's C-1: any accredited provider took access to any address, re-took it after a
/// revoke, renewed it daily, widened a narrow grant and kept it after losing accreditation.
contract ConsentManagerEmergencyTest is ConsentManagerBase {
    address internal provider2 = makeAddr("provider2");

    IConsentManager.EmergencyMode internal constant NONE = IConsentManager.EmergencyMode.None;
    IConsentManager.EmergencyMode internal constant NAMED = IConsentManager.EmergencyMode.Named;
    IConsentManager.EmergencyMode internal constant ANY = IConsentManager.EmergencyMode.AnyProvider;
    IConsentManager.EmergencyStanding internal constant DEFAULT = IConsentManager.EmergencyStanding.Default;
    IConsentManager.EmergencyStanding internal constant ALLOWED = IConsentManager.EmergencyStanding.Allowed;
    IConsentManager.EmergencyStanding internal constant BLOCKED = IConsentManager.EmergencyStanding.Blocked;

    uint40 internal constant COOLDOWN = 7 days;

    function setUp() public override {
        super.setUp();
        _accreditProvider(participants, provider2);
    }

    // ---------------------------------------------------------------- helpers

    function _policy(IConsentManager.EmergencyMode mode, uint8 scopes, bool fullHistory) internal {
        vm.prank(patient);
        cm.setEmergencyPolicy(mode, scopes, fullHistory);
    }

    function _standing(address who, IConsentManager.EmergencyStanding standing) internal {
        vm.prank(patient);
        cm.setEmergencyStanding(who, standing);
    }

    /// The patient names `provider` for break-glass access to every category, no history.
    function _allowProvider() internal {
        _policy(NAMED, ALL, false);
        _standing(provider, ALLOWED);
    }

    function _take(address who) internal {
        vm.prank(who);
        cm.takeEmergencyAccess(patient, "unconscious in ER");
    }

    function _expectNotPermitted(address who) internal {
        vm.expectRevert(
            abi.encodeWithSelector(IConsentManager.ConsentManagerEmergencyNotPermitted.selector, patient, who)
        );
    }

    function _withdrawProvider(address who) internal {
        bytes32 role = participants.PROVIDER_ROLE();
        vm.prank(admin);
        participants.revokeRole(role, who);
    }

    // ---------------------------------------------------------------- the attacks (C-1)

    function test_emergency_AnyProviderTakesAccessToAnyAddress_IsRefusedByDefault() public {
        // No policy: break-glass is opt-in, so no provider may take it, for any address.
        assertEq(uint8(cm.emergencyPolicyOf(patient).mode), uint8(NONE));
        _expectNotPermitted(provider);
        _take(provider);
        _assertNoAccess(patient, provider);

        address nobody = makeAddr("unregistered");
        vm.expectRevert(
            abi.encodeWithSelector(IConsentManager.ConsentManagerEmergencyNotPermitted.selector, nobody, provider)
        );
        vm.prank(provider);
        cm.takeEmergencyAccess(nobody, "x");
        assertEq(cm.emergencyScopes(nobody, provider), 0);
    }

    function test_emergency_RetakeInSameBlockAfterRevoke_IsRefused() public {
        _policy(ANY, ALL, false);
        _take(provider);
        vm.expectEmit(true, true, true, true, address(cm));
        emit IConsentManager.AccessRevoked(patient, provider);
        vm.expectEmit(true, true, true, true, address(cm));
        emit IConsentManager.EmergencyStandingSet(patient, provider, BLOCKED);
        _revokeDirect(provider);

        // Same block: the revoke blocked the provider.
        _expectNotPermitted(provider);
        _take(provider);
        _assertNoAccess(patient, provider);
        assertEq(uint8(cm.grantOf(patient, provider).emergencyStanding), uint8(BLOCKED));

        // Until the patient allows it again.
        _standing(provider, ALLOWED);
        _take(provider);
        assertTrue(cm.canRead(patient, provider, NOTES));
    }

    function test_emergency_DailyRenewalForEver_IsRefused() public {
        _allowProvider();
        _take(provider);
        vm.warp(T0 + 24 hours);
        _assertNoAccess(patient, provider);
        vm.expectRevert(
            abi.encodeWithSelector(
                IConsentManager.ConsentManagerEmergencyCooldown.selector, patient, provider, T0 + 24 hours + COOLDOWN
            )
        );
        _take(provider);

        vm.warp(T0 + 24 hours + COOLDOWN - 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IConsentManager.ConsentManagerEmergencyCooldown.selector, patient, provider, T0 + 24 hours + COOLDOWN
            )
        );
        _take(provider);

        // One window per eight days at most.
        vm.warp(T0 + 24 hours + COOLDOWN);
        _take(provider);
        assertTrue(cm.canRead(patient, provider, LABORATORY));
    }

    function test_emergency_CooldownResetByAnInterveningGrant_IsRefused() public {
        // The provider took break-glass; the patient then gives it a narrow lab grant (or signs one
        // that the provider relays when it suits it). Replacing the emergency word must not reset
        // the cooldown: else every grant buys another day of every category, and the provider
        // destroys the patient's grant by re-taking.
        _allowProvider();
        _take(provider);
        uint256 availableAt = T0 + 24 hours + COOLDOWN;
        vm.warp(T0 + 2 hours);
        _grantDirect(provider, uint8(1) << LABORATORY, T0 + 2 hours, T0 + 30 days);
        vm.expectRevert(
            abi.encodeWithSelector(
                IConsentManager.ConsentManagerEmergencyCooldown.selector, patient, provider, availableAt
            )
        );
        _take(provider);
        assertTrue(cm.canRead(patient, provider, LABORATORY));
        assertFalse(cm.canRead(patient, provider, NOTES));

        // Nor does a revoke of that grant reset it, nor its end.
        _revokeDirect(provider);
        vm.expectRevert(
            abi.encodeWithSelector(
                IConsentManager.ConsentManagerEmergencyCooldown.selector, patient, provider, availableAt
            )
        );
        _take(provider);
        vm.warp(availableAt - 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IConsentManager.ConsentManagerEmergencyCooldown.selector, patient, provider, availableAt
            )
        );
        _take(provider);

        vm.warp(availableAt);
        _take(provider);
        assertTrue(cm.canRead(patient, provider, NOTES));
    }

    function test_emergency_CooldownResetByAnApprovedRequest_IsRefused() public {
        // The same through a research approval, for a provider that is also an accredited researcher.
        _accreditResearcher(participants, provider);
        _allowProvider();
        _take(provider);
        vm.warp(T0 + 1 hours);
        vm.prank(provider);
        cm.requestAccess(patient, RESEARCH_SCOPES, HRESCH, DURATION, STUDY);
        IConsentManager.AccessRequest memory request = _researchRequest(T0 + 1 hours);
        request.researcher = provider;
        vm.prank(patient);
        cm.approveRequest(request, "");
        vm.expectRevert(
            abi.encodeWithSelector(
                IConsentManager.ConsentManagerEmergencyCooldown.selector, patient, provider, T0 + 24 hours + COOLDOWN
            )
        );
        _take(provider);
    }

    function test_emergency_RenewalInsideTheWindow_IsRefused() public {
        _allowProvider();
        _take(provider);
        vm.warp(T0 + 23 hours);
        vm.expectRevert(
            abi.encodeWithSelector(
                IConsentManager.ConsentManagerEmergencyCooldown.selector, patient, provider, T0 + 24 hours + COOLDOWN
            )
        );
        _take(provider);
        assertEq(cm.grantOf(patient, provider).validUntil, T0 + 24 hours);
    }

    function test_emergency_WideningNarrowGrant_IsRefused() public {
        // A laboratory-only grant cannot be widened through break-glass without the patient's policy.
        _grantDirect(provider, 0x01, FROM, UNTIL);
        _expectNotPermitted(provider);
        _take(provider);
        assertFalse(cm.canRead(patient, provider, NOTES));
        assertTrue(cm.canRead(patient, provider, LABORATORY));

        // And with a policy, only to the categories the patient chose for emergencies.
        _policy(ANY, 0x05, false);
        _take(provider);
        assertTrue(cm.canRead(patient, provider, MEDICATIONS));
        assertFalse(cm.canRead(patient, provider, NOTES));
        assertEq(cm.emergencyScopes(patient, provider), 0x05);
    }

    function test_emergency_KeptAfterLosingAccreditation_IsRefused() public {
        _allowProvider();
        _take(provider);
        assertEq(cm.emergencyScopes(patient, provider), ALL);
        _withdrawProvider(provider);
        _assertNoAccess(patient, provider);
        assertEq(cm.emergencyScopes(patient, provider), 0);
        assertFalse(cm.canReadRecord(patient, provider, LABORATORY, T0));
    }

    function test_emergency_NamedModeRefusesProvidersNotNamed() public {
        _allowProvider();
        _expectNotPermitted(provider2);
        _take(provider2);
        _assertNoAccess(patient, provider2);
        _take(provider);
        assertTrue(cm.canRead(patient, provider, NOTES));
    }

    function test_emergency_AnyProviderModeRefusesBlockedProviders() public {
        _policy(ANY, ALL, false);
        _standing(provider2, BLOCKED);
        _expectNotPermitted(provider2);
        _take(provider2);
        _take(provider);
        assertTrue(cm.canRead(patient, provider, NOTES));
    }

    function test_emergency_BlockEndsLiveAccessAtOnce() public {
        _allowProvider();
        _take(provider);
        vm.expectEmit(true, true, true, true, address(cm));
        emit IConsentManager.EmergencyStandingSet(patient, provider, BLOCKED);
        _standing(provider, BLOCKED);
        _assertNoAccess(patient, provider);
        assertEq(cm.emergencyScopes(patient, provider), 0);
        // Back to Default in the Named mode is still not allowed.
        _standing(provider, DEFAULT);
        _assertNoAccess(patient, provider);
    }

    function test_emergency_PolicyNoneEndsLiveAccess() public {
        _policy(ANY, ALL, true);
        _take(provider);
        _policy(NONE, 0, false);
        _assertNoAccess(patient, provider);
        assertEq(cm.emergencyScopes(patient, provider), 0);
    }

    function test_takeEmergencyAccess_UnderPolicyGrantsItsScopesForOneDay() public {
        _policy(NAMED, ALL, true);
        vm.expectEmit(true, true, true, true, address(cm));
        emit IConsentManager.EmergencyStandingSet(patient, provider, ALLOWED);
        _standing(provider, ALLOWED);

        vm.expectEmit(true, true, true, true, address(cm));
        emit IConsentManager.EmergencyAccessTaken(patient, provider, T0 + 24 hours, ALL, true, "unconscious in ER");
        _take(provider);

        _assertGrant(patient, provider, T0, T0 + 24 hours, ALL, ETREAT, true, 0);
        IConsentManager.Grant memory g = cm.grantOf(patient, provider);
        assertEq(uint8(g.kind), uint8(IConsentManager.GrantKind.Emergency));
        assertEq(g.appointment, 0);
        for (uint8 c; c < 6; ++c) {
            assertTrue(cm.canRead(patient, provider, c));
        }
        assertEq(cm.emergencyScopes(patient, provider), ALL);
        vm.warp(T0 + 24 hours - 1);
        assertTrue(cm.canRead(patient, provider, NOTES));
        vm.warp(T0 + 24 hours);
        _assertNoAccess(patient, provider);
        assertEq(cm.emergencyScopes(patient, provider), 0);
    }

    function test_setEmergencyPolicy_EmitsAndStores() public {
        vm.expectEmit(true, true, true, true, address(cm));
        emit IConsentManager.EmergencyPolicySet(patient, ANY, 0x07, true);
        _policy(ANY, 0x07, true);
        IConsentManager.EmergencyPolicy memory p = cm.emergencyPolicyOf(patient);
        assertEq(uint8(p.mode), uint8(ANY));
        assertEq(p.scopes, 0x07);
        assertTrue(p.fullHistory);
        assertEq(uint8(cm.emergencyPolicyOf(patient2).mode), uint8(NONE));
    }

    function test_RevertWhen_EmergencyPolicyScopesInvalid() public {
        vm.expectRevert(
            abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidEmergencyPolicy.selector, ANY, uint8(0))
        );
        _policy(ANY, 0, false);
        vm.expectRevert(
            abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidEmergencyPolicy.selector, NAMED, uint8(0x40))
        );
        _policy(NAMED, 0x40, false);
        vm.expectRevert(
            abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidEmergencyPolicy.selector, NONE, uint8(0x80))
        );
        _policy(NONE, 0x80, false);
    }

    function test_RevertWhen_EmergencyStandingForZeroOrSelf() public {
        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidGrantee.selector, address(0)));
        _standing(address(0), ALLOWED);
        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidGrantee.selector, patient));
        _standing(patient, ALLOWED);
    }

    function test_setEmergencyStanding_KeepsTheGrantAndNonce() public {
        _grantDirect(provider, SCOPES, FROM, UNTIL);
        _standing(provider, BLOCKED);
        _assertGrant(patient, provider, FROM, UNTIL, SCOPES, TREAT, false, 1);
        // A block concerns emergency access only: the patient's own grant still holds.
        assertTrue(cm.canRead(patient, provider, LABORATORY));
        _revokeDirect(provider);
        _grantDirect(provider, SCOPES, FROM, UNTIL);
        assertEq(uint8(cm.grantOf(patient, provider).emergencyStanding), uint8(BLOCKED), "standing survives");
    }

    // ---------------------------------------------------------------- history

    function test_canReadRecord_EmergencyOpensHistoryOnlyWithOptIn() public {
        vm.warp(T0 + 10 days);
        _allowProvider();
        _take(provider);
        uint40 taken = T0 + 10 days;
        assertFalse(cm.canReadRecord(patient, provider, NOTES, taken - 1), "earlier record, no opt-in");
        assertTrue(cm.canReadRecord(patient, provider, NOTES, taken), "record in the window");
        assertTrue(cm.canRead(patient, provider, NOTES));

        _policy(NAMED, ALL, true);
        assertTrue(cm.canReadRecord(patient, provider, NOTES, 0), "earlier record, opted in");
        _policy(NAMED, 0x01, false);
        assertFalse(cm.canReadRecord(patient, provider, NOTES, 0), "opt-in withdrawn");
    }

    // ---------------------------------------------------------------- kept behaviour

    function test_revoke_EndsEmergencyAccess() public {
        _allowProvider();
        _take(provider);
        _revokeDirect(provider);
        _assertNoAccess(patient, provider);
        _assertGrant(patient, provider, 0, 0, 0, 0, false, 1);
    }

    function test_grant_ClearsEmergencyFlag() public {
        _allowProvider();
        _take(provider);
        _grantDirect(provider, SCOPES, FROM, UNTIL);
        _assertGrant(patient, provider, FROM, UNTIL, SCOPES, TREAT, false, 1);
        assertEq(cm.emergencyScopes(patient, provider), 0);
    }

    function test_revokeBySig_StillEndsEmergencyAccessTakenAfterSigning() public {
        // The patient signs a revoke of the provider; the provider then takes emergency access.
        // Emergency access must not void the pending revoke by moving the nonce.
        _allowProvider();
        IConsentManager.Authorization memory auth =
            _sign(patientPk, ConsentSig.revokeHash(patient, provider, 0, DEADLINE), 0);
        _take(provider);
        assertEq(cm.grantOf(patient, provider).nonce, 0);

        vm.prank(relayer);
        cm.revokeBySig(patient, provider, auth);

        assertFalse(cm.canRead(patient, provider, 0));
        assertEq(cm.grantOf(patient, provider).nonce, 1);
    }

    function test_RevertWhen_EmergencyByNonProvider() public {
        _policy(ANY, ALL, false);
        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerNotProvider.selector, stranger));
        _take(stranger);
        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerNotProvider.selector, researcher));
        _take(researcher);
        _assertNoAccess(patient, stranger);
        _assertNoAccess(patient, researcher);
    }

    function test_RevertWhen_EmergencyWithoutReason() public {
        _allowProvider();
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
