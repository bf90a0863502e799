// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ConsentManager} from "../../contracts/ConsentManager.sol";
import {IConsentManager} from "../../contracts/interfaces/IConsentManager.sol";
import {ParticipantRegistry} from "../../contracts/ParticipantRegistry.sol";
import {IParticipantRegistry} from "../../contracts/interfaces/IParticipantRegistry.sol";
import {Base} from "../utils/Base.sol";
import {ConsentHandler} from "../utils/ConsentHandler.sol";

/// forge-config: default.invariant.runs = 64
/// forge-config: default.invariant.depth = 50
/// forge-config: default.invariant.fail-on-revert = true
contract ConsentInvariantsTest is Base {
    ConsentManager internal cm;
    ConsentHandler internal handler;

    function setUp() public {
        vm.warp(T0);
        ParticipantRegistry registry = _deployParticipants();
        cm = new ConsentManager(IParticipantRegistry(address(registry)));
        handler = new ConsentHandler(cm, T0);
        // The two grantees are accredited providers, so they may try break-glass access.
        address[] memory gs = handler.grantees();
        _accreditProvider(registry, gs[0]);
        _accreditProvider(registry, gs[1]);

        bytes4[16] memory actions = [
            ConsentHandler.grant.selector,
            ConsentHandler.revoke.selector,
            ConsentHandler.grantBySig.selector,
            ConsentHandler.delegateGrant.selector,
            ConsentHandler.revokeBySig.selector,
            ConsentHandler.appointDelegate.selector,
            ConsentHandler.removeDelegate.selector,
            ConsentHandler.appointDelegateBySig.selector,
            ConsentHandler.removeDelegateBySig.selector,
            ConsentHandler.strangerAttempt.selector,
            ConsentHandler.replay.selector,
            ConsentHandler.staleSignature.selector,
            ConsentHandler.setEmergencyPolicy.selector,
            ConsentHandler.setEmergencyStanding.selector,
            ConsentHandler.takeEmergency.selector,
            ConsentHandler.warp.selector
        ];
        bytes4[] memory selectors = new bytes4[](actions.length);
        for (uint256 i; i < actions.length; ++i) {
            selectors[i] = actions[i];
        }
        targetContract(address(handler));
        targetSelector(FuzzSelector({addr: address(handler), selectors: selectors}));
    }

    /// canRead answers exactly what the model says: access only inside [from, until) and in scope.
    function invariant_noAccessOutsideWindowOrScope() public {
        vm.warp(handler.ghost_now());
        address[] memory ps = handler.patients();
        address[] memory gs = handler.grantees();
        for (uint256 i; i < ps.length; ++i) {
            for (uint256 j; j < gs.length; ++j) {
                ConsentHandler.GrantModel memory m = handler.grantModel(ps[i], gs[j]);
                IConsentManager.Grant memory g = cm.grantOf(ps[i], gs[j]);
                assertEq(g.validFrom, m.from, "validFrom");
                assertEq(g.validUntil, m.until, "validUntil");
                assertEq(g.scopes, m.scopes, "scopes");
                for (uint8 c; c < 8; ++c) {
                    assertEq(cm.canRead(ps[i], gs[j], c), handler.expectedAccess(ps[i], gs[j], c), "canRead");
                }
            }
        }
    }

    /// After a revoke, nothing is readable until a new grant (which clears the model's flag).
    function invariant_noAccessAfterRevokeUntilNewGrant() public {
        vm.warp(handler.ghost_now());
        address[] memory ps = handler.patients();
        address[] memory gs = handler.grantees();
        for (uint256 i; i < ps.length; ++i) {
            for (uint256 j; j < gs.length; ++j) {
                if (!handler.grantModel(ps[i], gs[j]).revoked) continue;
                assertEq(cm.grantOf(ps[i], gs[j]).validUntil, 0, "revoked grant cleared");
                for (uint8 c; c < 8; ++c) {
                    assertFalse(cm.canRead(ps[i], gs[j], c), "access after revoke");
                }
            }
        }
    }

    /// Only the patient, or (for grants and revokes) their appointed delegate, changed consent;
    /// every outcome matched the model.
    function invariant_onlyPatientOrDelegateChangesConsent() public view {
        assertEq(handler.ghost_unauthorizedSuccesses(), 0, "unauthorized change");
        assertEq(handler.ghost_modelMismatches(), 0, "outcome differs from model");
        address[] memory ps = handler.patients();
        address[] memory ds = handler.delegates();
        for (uint256 i; i < ps.length; ++i) {
            for (uint256 j; j < ds.length; ++j) {
                assertEq(
                    cm.delegationOf(ps[i], ds[j]).appointed,
                    handler.delegationModel(ps[i], ds[j]).appointed,
                    "delegation"
                );
            }
            // The stranger never becomes anyone's delegate or grantee.
            assertFalse(cm.delegationOf(ps[i], handler.stranger()).appointed, "stranger delegate");
            assertEq(cm.grantOf(ps[i], handler.stranger()).validUntil, 0, "stranger grant");
        }
    }

    /// Nonces only increase, by exactly one per successful change; no signature (digest) and no
    /// (relationship, nonce) is accepted twice; replays and voided signatures all fail.
    function invariant_nonceNeverUsedTwice() public view {
        assertEq(handler.ghost_nonceViolations(), 0, "nonce step");
        assertEq(handler.ghost_replaySuccesses(), 0, "replay accepted");
        assertEq(handler.ghost_staleSignatureSuccesses(), 0, "voided signature accepted");
        assertEq(handler.ghost_duplicateDigests(), 0, "digest accepted twice");
        assertEq(handler.ghost_nonceReuses(), 0, "nonce used twice");
        address[] memory ps = handler.patients();
        address[] memory gs = handler.grantees();
        address[] memory ds = handler.delegates();
        for (uint256 i; i < ps.length; ++i) {
            for (uint256 j; j < gs.length; ++j) {
                assertEq(cm.grantOf(ps[i], gs[j]).nonce, handler.grantModel(ps[i], gs[j]).nonce, "grant nonce");
            }
            for (uint256 j; j < ds.length; ++j) {
                assertEq(
                    cm.delegationOf(ps[i], ds[j]).nonce, handler.delegationModel(ps[i], ds[j]).nonce, "delegation nonce"
                );
            }
        }
    }

    /// No access through emergency after a block: a blocked provider's emergency grant opens
    /// nothing, and it holds no emergency scopes.
    function invariant_noEmergencyAccessAfterBlock() public {
        vm.warp(handler.ghost_now());
        address[] memory ps = handler.patients();
        address[] memory gs = handler.grantees();
        for (uint256 i; i < ps.length; ++i) {
            for (uint256 j; j < gs.length; ++j) {
                IConsentManager.Grant memory g = cm.grantOf(ps[i], gs[j]);
                if (g.emergencyStanding != IConsentManager.EmergencyStanding.Blocked) continue;
                assertEq(cm.emergencyScopes(ps[i], gs[j]), 0, "emergency scopes after a block");
                if (g.kind != IConsentManager.GrantKind.Emergency) continue;
                for (uint8 c; c < 8; ++c) {
                    assertFalse(cm.canRead(ps[i], gs[j], c), "emergency access after a block");
                }
            }
        }
    }

    /// No grant a delegate made outlives its delegation unless the patient kept it.
    function invariant_noDelegateGrantOutlivesItsDelegation() public {
        vm.warp(handler.ghost_now());
        address[] memory ps = handler.patients();
        address[] memory gs = handler.grantees();
        for (uint256 i; i < ps.length; ++i) {
            for (uint256 j; j < gs.length; ++j) {
                IConsentManager.Grant memory g = cm.grantOf(ps[i], gs[j]);
                if (g.appointment == 0) continue;
                assertEq(uint8(g.kind), uint8(IConsentManager.GrantKind.Delegate), "delegate grant kind");
                IConsentManager.AppointmentState state = cm.appointmentOf(g.appointment).state;
                assertEq(state == IConsentManager.AppointmentState.Ended, handler.appointmentEnded(g.appointment));
                if (state != IConsentManager.AppointmentState.Ended) continue;
                for (uint8 c; c < 8; ++c) {
                    assertFalse(cm.canRead(ps[i], gs[j], c), "delegate grant outlived its delegation");
                    assertFalse(cm.canReadRecord(ps[i], gs[j], c, uint64(g.validFrom)), "record after removal");
                }
            }
        }
    }

    /// The run exercised the contract: changes happened and some were signed.
    function afterInvariant() public view {
        assertGt(handler.ghost_changes(), 0, "no consent change in this run");
    }
}
