// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IConsentManager} from "../../contracts/interfaces/IConsentManager.sol";
import {ConsentManagerBase} from "../utils/ConsentManagerBase.sol";
import {ConsentSig} from "../utils/ConsentSig.sol";

/// @notice Delegates with bounded powers (the review's H-3): the terms set at appointment, no
/// self-grants, grants that end with the delegation unless kept, signatures bound to the
/// appointment, and the history rule of `canReadRecord`.
contract ConsentManagerDelegateTermsTest is ConsentManagerBase {
    uint40 internal constant MAX = 30 days;

    // ---------------------------------------------------------------- helpers

    /// `patient` appoints `delegate` for laboratory | medications, windows up to 30 days.
    function _appointNarrow(bool openHistory) internal {
        vm.prank(patient);
        cm.appointDelegate(delegate, SCOPES, MAX, openHistory);
    }

    /// The delegate signs a grant to `grantee` (naming its current appointment) and relays it.
    function _delegateGrant(address grantee, uint8 scopes, uint40 from, uint40 until) internal {
        _delegateGrantExpect(grantee, scopes, from, until, "");
    }

    function _delegateGrantExpect(address grantee, uint8 scopes, uint40 from, uint40 until, bytes memory err) internal {
        uint256 nonce = cm.grantOf(patient, grantee).nonce | _appointmentBits(delegate);
        uint256 deadline = T0 + 365 days;
        IConsentManager.Authorization memory auth = ConsentSig.sign(
            delegatePk,
            domain,
            ConsentSig.grantHash(patient, grantee, scopes, TREAT, from, until, "", nonce, deadline),
            nonce,
            deadline,
            block.chainid,
            address(cm)
        );
        if (err.length != 0) vm.expectRevert(err);
        vm.prank(delegate);
        cm.grantBySig(patient, grantee, scopes, TREAT, from, until, "", auth);
    }

    // ---------------------------------------------------------------- the attacks (H-3)

    function test_delegate_SelfGrant_IsRefused() public {
        _appointDelegate();
        _delegateGrantExpect(
            delegate,
            ALL,
            T0,
            T0 + 30 days,
            abi.encodeWithSelector(IConsentManager.ConsentManagerDelegateSelfGrant.selector, delegate)
        );
        _assertNoAccess(patient, delegate);
    }

    function test_delegate_GrantForEverBeyondItsTerms_IsRefused() public {
        _appointNarrow(false);
        // 2^40 - 1 is the review's "for ever".
        uint40 forever = type(uint40).max;
        _delegateGrantExpect(
            doctor,
            SCOPES,
            T0,
            forever,
            abi.encodeWithSelector(
                IConsentManager.ConsentManagerOutsideDelegateTerms.selector, delegate, SCOPES, uint256(forever - T0)
            )
        );
        // Categories outside its scopes.
        _delegateGrantExpect(
            doctor,
            ALL,
            T0,
            T0 + 1 days,
            abi.encodeWithSelector(
                IConsentManager.ConsentManagerOutsideDelegateTerms.selector, delegate, ALL, uint256(1 days)
            )
        );
        _assertNoAccess(patient, doctor);
        // Within the terms it works, and the grant records who made it.
        _delegateGrant(doctor, 0x01, T0, T0 + MAX);
        IConsentManager.Grant memory g = cm.grantOf(patient, doctor);
        assertEq(uint8(g.kind), uint8(IConsentManager.GrantKind.Delegate));
        assertEq(g.appointment, cm.delegationOf(patient, delegate).appointment);
        assertTrue(cm.canRead(patient, doctor, LABORATORY));
    }

    function test_delegate_GrantSurvivingRemoval_IsRefused() public {
        _appointDelegate();
        _delegateGrant(doctor, SCOPES, T0, T0 + 30 days);
        assertTrue(cm.canRead(patient, doctor, LABORATORY));

        uint48 appointment = cm.delegationOf(patient, delegate).appointment;
        vm.expectEmit(true, true, true, true, address(cm));
        emit IConsentManager.DelegateRemoved(patient, delegate, appointment, false);
        vm.prank(patient);
        cm.removeDelegate(delegate, false);

        _assertNoAccess(patient, doctor);
        assertFalse(cm.canReadRecord(patient, doctor, LABORATORY, T0 + 1));
        assertEq(uint8(cm.appointmentOf(appointment).state), uint8(IConsentManager.AppointmentState.Ended));
        // The patient's own grant to the same reader holds (it replaces the delegate's).
        _grantDirect(doctor, SCOPES, FROM, UNTIL);
        assertTrue(cm.canRead(patient, doctor, LABORATORY));
    }

    function test_removeDelegate_KeepGrantsKeepsThem() public {
        _appointDelegate();
        _delegateGrant(doctor, SCOPES, T0, T0 + 30 days);
        uint48 appointment = cm.delegationOf(patient, delegate).appointment;
        vm.prank(patient);
        cm.removeDelegate(delegate, true);
        assertTrue(cm.canRead(patient, doctor, LABORATORY));
        assertEq(uint8(cm.appointmentOf(appointment).state), uint8(IConsentManager.AppointmentState.Kept));
        // The kept grant still follows the appointment's history terms (no history here).
        assertFalse(cm.canReadRecord(patient, doctor, LABORATORY, T0 - 1));
    }

    function test_removeDelegateBySig_KeepGrantsIsSigned() public {
        _appointDelegate();
        _delegateGrant(doctor, SCOPES, T0, T0 + 30 days);
        bytes32 h = ConsentSig.removeHashWith(patient, delegate, true, 1, DEADLINE);
        IConsentManager.Authorization memory auth = _sign(patientPk, h, 1);
        // Relayed with the other flag, the signature does not recover to the patient.
        vm.prank(relayer);
        vm.expectRevert();
        cm.removeDelegateBySig(patient, delegate, false, auth);
        vm.prank(relayer);
        cm.removeDelegateBySig(patient, delegate, true, auth);
        assertTrue(cm.canRead(patient, doctor, LABORATORY));
    }

    function test_delegate_ReappointmentRevivingOldSignatures_IsRefused() public {
        _appointDelegate();
        // Signed under appointment 1, not relayed.
        uint256 nonce = uint256(1) << 64;
        IConsentManager.Authorization memory auth = _sign(
            delegatePk, ConsentSig.grantHash(patient, doctor, SCOPES, TREAT, FROM, UNTIL, "", nonce, DEADLINE), nonce
        );
        vm.startPrank(patient);
        cm.removeDelegate(delegate, false);
        cm.appointDelegate(delegate, ConsentSig.DELEGATE_SCOPES, ConsentSig.DELEGATE_MAX, ConsentSig.DELEGATE_HISTORY);
        vm.stopPrank();
        assertEq(cm.delegationOf(patient, delegate).appointment, 2);

        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerWrongAppointment.selector, delegate, 1, 2));
        vm.prank(relayer);
        cm.grantBySig(patient, doctor, SCOPES, TREAT, FROM, UNTIL, "", auth);
        _assertNoAccess(patient, doctor);
    }

    function test_RevertWhen_PatientSignatureNamesAnAppointment() public {
        uint256 nonce = uint256(1) << 64;
        IConsentManager.Authorization memory auth = _sign(
            patientPk, ConsentSig.grantHash(patient, doctor, SCOPES, TREAT, FROM, UNTIL, "", nonce, DEADLINE), nonce
        );
        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerWrongAppointment.selector, patient, 1, 0));
        vm.prank(relayer);
        cm.grantBySig(patient, doctor, SCOPES, TREAT, FROM, UNTIL, "", auth);
    }

    function test_RevertWhen_DelegateSignsWithoutItsAppointment() public {
        _appointDelegate();
        IConsentManager.Authorization memory auth =
            _sign(delegatePk, ConsentSig.grantHash(patient, doctor, SCOPES, TREAT, FROM, UNTIL, "", 0, DEADLINE), 0);
        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerWrongAppointment.selector, delegate, 0, 1));
        vm.prank(relayer);
        cm.grantBySig(patient, doctor, SCOPES, TREAT, FROM, UNTIL, "", auth);
    }

    // ---------------------------------------------------------------- history

    function test_delegate_GrantOpeningRecordsBeforeItsAppointment_IsRefused() public {
        vm.warp(T0 + 10 days);
        _appointNarrow(false);
        // A window back-dated to the start of time is clamped to now.
        _delegateGrant(doctor, SCOPES, 0, T0 + 20 days);
        IConsentManager.Grant memory g = cm.grantOf(patient, doctor);
        assertEq(g.validFrom, T0 + 10 days, "opens no earlier than the grant");
        assertFalse(cm.canReadRecord(patient, doctor, LABORATORY, T0), "record written before");
        assertTrue(cm.canReadRecord(patient, doctor, LABORATORY, T0 + 10 days), "record written since");
        assertTrue(cm.canRead(patient, doctor, LABORATORY));
    }

    function test_canReadRecord_DelegateGrantOpensHistoryWhenTermsAllow() public {
        vm.warp(T0 + 10 days);
        _appointNarrow(true);
        _delegateGrant(doctor, SCOPES, T0 + 10 days, T0 + 20 days);
        assertTrue(cm.canReadRecord(patient, doctor, LABORATORY, 0));
        assertFalse(cm.canReadRecord(patient, doctor, IMAGING, T0 + 10 days), "out of scope");
    }

    function test_canReadRecord_PatientGrantOpensHistory() public {
        vm.warp(T0 + 10 days);
        vm.prank(patient);
        cm.grant(doctor, SCOPES, TREAT, T0 + 10 days, T0 + 20 days, "");
        assertTrue(cm.canReadRecord(patient, doctor, LABORATORY, 0));
        assertTrue(cm.canReadRecord(patient, patient, NOTES, 0), "the patient reads all");
        assertFalse(cm.canReadRecord(patient, stranger, LABORATORY, T0 + 10 days), "no grant");
    }

    // ---------------------------------------------------------------- terms and decisions

    function test_RevertWhen_DelegateTermsInvalid() public {
        vm.startPrank(patient);
        vm.expectRevert(
            abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidDelegateTerms.selector, uint8(0), MAX)
        );
        cm.appointDelegate(delegate, 0, MAX, false);
        vm.expectRevert(
            abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidDelegateTerms.selector, SCOPES, uint40(0))
        );
        cm.appointDelegate(delegate, SCOPES, 0, false);
        vm.stopPrank();
        assertFalse(cm.delegationOf(patient, delegate).appointed);
    }

    function test_appointDelegate_StoresTerms() public {
        vm.expectEmit(true, true, true, true, address(cm));
        emit IConsentManager.DelegateAppointed(patient, delegate, 1, SCOPES, MAX, true);
        _appointNarrow(true);
        IConsentManager.Delegation memory d = cm.delegationOf(patient, delegate);
        assertTrue(d.appointed);
        assertEq(d.appointment, 1);
        assertEq(d.scopes, SCOPES);
        assertEq(d.maxDuration, MAX);
        assertTrue(d.openHistory);
        IConsentManager.Appointment memory a = cm.appointmentOf(1);
        assertEq(uint8(a.state), uint8(IConsentManager.AppointmentState.Live));
        assertTrue(a.openHistory);
    }

    function test_RevertWhen_DelegateApprovesOutsideItsTerms() public {
        // RESEARCH_SCOPES (laboratory | conditions) is outside SCOPES; DURATION is 90 days.
        _appointNarrow(false);
        _request();
        vm.expectRevert(
            abi.encodeWithSelector(
                IConsentManager.ConsentManagerOutsideDelegateTerms.selector,
                delegate,
                RESEARCH_SCOPES,
                uint256(DURATION)
            )
        );
        vm.prank(delegate);
        cm.approveRequest(req, "");
        _assertNoAccess(patient, researcher);
    }

    function test_delegate_ApprovedResearchGrantEndsWithTheDelegation() public {
        _appointDelegate();
        _request();
        vm.prank(delegate);
        cm.approveRequest(req, "");
        IConsentManager.Grant memory g = cm.grantOf(patient, researcher);
        assertEq(uint8(g.kind), uint8(IConsentManager.GrantKind.Research));
        assertEq(g.appointment, 1);
        assertTrue(cm.canRead(patient, researcher, CONDITIONS));
        vm.prank(patient);
        cm.removeDelegate(delegate, false);
        _assertNoAccess(patient, researcher);
    }
}
