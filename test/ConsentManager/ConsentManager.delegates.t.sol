// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IConsentManager} from "../../contracts/interfaces/IConsentManager.sol";
import {ConsentManagerBase} from "../utils/ConsentManagerBase.sol";
import {ConsentSig} from "../utils/ConsentSig.sol";

/// @notice Appointing and removing delegates, and what a delegate may and may not do.
contract ConsentManagerDelegatesTest is ConsentManagerBase {
    // ---------------------------------------------------------------- appoint / remove

    function test_appointDelegate_ByTransaction() public {
        vm.expectEmit(true, true, true, true, address(cm));
        emit IConsentManager.DelegateAppointed(
            patient, delegate, 1, ConsentSig.DELEGATE_SCOPES, ConsentSig.DELEGATE_MAX, ConsentSig.DELEGATE_HISTORY
        );
        vm.prank(patient);
        cm.appointDelegate(delegate, ConsentSig.DELEGATE_SCOPES, ConsentSig.DELEGATE_MAX, ConsentSig.DELEGATE_HISTORY);

        IConsentManager.Delegation memory d = cm.delegationOf(patient, delegate);
        assertTrue(d.appointed);
        assertEq(d.nonce, 1);
        assertFalse(cm.delegationOf(patient2, delegate).appointed);
    }

    function test_removeDelegate_ByTransaction() public {
        _appointDelegate();

        vm.expectEmit(true, true, true, true, address(cm));
        emit IConsentManager.DelegateRemoved(patient, delegate, 1, false);
        vm.prank(patient);
        cm.removeDelegate(delegate, false);

        IConsentManager.Delegation memory d = cm.delegationOf(patient, delegate);
        assertFalse(d.appointed);
        assertEq(d.nonce, 2);
    }

    function test_RevertWhen_DelegateIsZero() public {
        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidDelegate.selector, address(0)));
        vm.prank(patient);
        cm.appointDelegate(address(0), ConsentSig.DELEGATE_SCOPES, ConsentSig.DELEGATE_MAX, ConsentSig.DELEGATE_HISTORY);
        assertEq(cm.delegationOf(patient, address(0)).nonce, 0);
    }

    function test_RevertWhen_DelegateIsPatient() public {
        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidDelegate.selector, patient));
        vm.prank(patient);
        cm.appointDelegate(patient, ConsentSig.DELEGATE_SCOPES, ConsentSig.DELEGATE_MAX, ConsentSig.DELEGATE_HISTORY);
        assertFalse(cm.delegationOf(patient, patient).appointed);
    }

    function test_RevertWhen_DelegateAppointedTwice() public {
        _appointDelegate();
        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidDelegate.selector, delegate));
        vm.prank(patient);
        cm.appointDelegate(delegate, ConsentSig.DELEGATE_SCOPES, ConsentSig.DELEGATE_MAX, ConsentSig.DELEGATE_HISTORY);
        assertEq(cm.delegationOf(patient, delegate).nonce, 1);
    }

    function test_RevertWhen_RemovingDelegateNotAppointed() public {
        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidDelegate.selector, delegate));
        vm.prank(patient);
        cm.removeDelegate(delegate, false);
        assertEq(cm.delegationOf(patient, delegate).nonce, 0);
    }

    // ---------------------------------------------------------------- signed by a delegate

    function test_grantBySig_SignedByDelegate() public {
        _appointDelegate();
        _assertSignedAccepted(Op.Grant, delegatePk, delegate);
    }

    function test_revokeBySig_SignedByDelegate() public {
        _appointDelegate();
        _prepare(Op.Revoke);
        _assertSignedAccepted(Op.Revoke, delegatePk, delegate);
    }

    function test_approveRequestBySig_SignedByDelegate() public {
        _appointDelegate();
        _prepare(Op.Approve);
        _assertSignedAccepted(Op.Approve, delegatePk, delegate);
    }

    function test_denyRequestBySig_SignedByDelegate() public {
        _appointDelegate();
        _prepare(Op.Deny);
        _assertSignedAccepted(Op.Deny, delegatePk, delegate);
    }

    function test_grantBySig_DelegateRelaysOwnSignature() public {
        _appointDelegate();
        IConsentManager.Authorization memory auth = _signOp(Op.Grant, delegatePk, 0);
        vm.prank(delegate);
        cm.grantBySig(patient, doctor, SCOPES, TREAT, FROM, UNTIL, KEYS_CID, auth);
        _assertApplied(Op.Grant, 0);
    }

    function test_RevertWhen_DelegateSignsAppointDelegate() public {
        _appointDelegate();

        IConsentManager.Authorization memory auth =
            _sign(delegatePk, ConsentSig.appointHash(patient, guardian, 0, DEADLINE), 0);
        _expectInvalidSigner(delegate);
        vm.prank(delegate);
        cm.appointDelegateBySig(patient, guardian, ConsentSig.DELEGATE_SCOPES, ConsentSig.DELEGATE_MAX, ConsentSig.DELEGATE_HISTORY, auth);
        assertFalse(cm.delegationOf(patient, guardian).appointed);
    }

    function test_RevertWhen_DelegateSignsRemoveDelegate() public {
        vm.startPrank(patient);
        cm.appointDelegate(delegate, ConsentSig.DELEGATE_SCOPES, ConsentSig.DELEGATE_MAX, ConsentSig.DELEGATE_HISTORY);
        cm.appointDelegate(guardian, ConsentSig.DELEGATE_SCOPES, ConsentSig.DELEGATE_MAX, ConsentSig.DELEGATE_HISTORY);
        vm.stopPrank();

        IConsentManager.Authorization memory auth =
            _sign(delegatePk, ConsentSig.removeHash(patient, guardian, 1, DEADLINE), 1);
        _expectInvalidSigner(delegate);
        vm.prank(relayer);
        cm.removeDelegateBySig(patient, guardian, false, auth);
        assertTrue(cm.delegationOf(patient, guardian).appointed);
    }

    function test_RevertWhen_RemovedDelegateSigns() public {
        vm.startPrank(patient);
        cm.appointDelegate(delegate, ConsentSig.DELEGATE_SCOPES, ConsentSig.DELEGATE_MAX, ConsentSig.DELEGATE_HISTORY);
        cm.removeDelegate(delegate, false);
        vm.stopPrank();

        IConsentManager.Authorization memory auth = _signOp(Op.Grant, delegatePk, 0);
        _expectInvalidSigner(delegate);
        _submit(Op.Grant, auth);
        _assertNoAccess(patient, doctor);
    }

    function test_RevertWhen_DelegateOfAnotherPatientSigns() public {
        vm.prank(patient2);
        cm.appointDelegate(delegate, ConsentSig.DELEGATE_SCOPES, ConsentSig.DELEGATE_MAX, ConsentSig.DELEGATE_HISTORY);

        IConsentManager.Authorization memory auth = _signOp(Op.Grant, delegatePk, 0);
        _expectInvalidSigner(delegate);
        _submit(Op.Grant, auth);
        _assertNoAccess(patient, doctor);
    }

    // ---------------------------------------------------------------- decisions by transaction

    function test_approveRequest_DirectByDelegate() public {
        _appointDelegate();
        uint256 id = _request();

        _expectEvents(Op.Approve, delegate, T0);
        vm.prank(delegate);
        cm.approveRequest(req, KEYS_CID);
        assertEq(_status(id), uint8(IConsentManager.RequestStatus.Approved));
        _assertApplied(Op.Approve, 0);
    }

    function test_denyRequest_DirectByDelegate() public {
        _appointDelegate();
        uint256 id = _request();

        _expectEvents(Op.Deny, delegate, T0);
        vm.prank(delegate);
        cm.denyRequest(req);
        assertEq(_status(id), uint8(IConsentManager.RequestStatus.Denied));
        _assertApplied(Op.Deny, 0);
    }

    function test_RevertWhen_StrangerApprovesDirectly() public {
        uint256 id = _request();
        vm.expectRevert(
            abi.encodeWithSelector(IConsentManager.ConsentManagerUnauthorized.selector, stranger, patient)
        );
        vm.prank(stranger);
        cm.approveRequest(req, KEYS_CID);
        assertEq(_status(id), uint8(IConsentManager.RequestStatus.Pending));
        _assertNoAccess(patient, researcher);
    }

    function test_RevertWhen_StrangerDeniesDirectly() public {
        uint256 id = _request();
        vm.expectRevert(
            abi.encodeWithSelector(IConsentManager.ConsentManagerUnauthorized.selector, stranger, patient)
        );
        vm.prank(stranger);
        cm.denyRequest(req);
        assertEq(_status(id), uint8(IConsentManager.RequestStatus.Pending));
    }

    function test_RevertWhen_ResearcherApprovesOwnRequest() public {
        uint256 id = _request();
        vm.expectRevert(
            abi.encodeWithSelector(IConsentManager.ConsentManagerUnauthorized.selector, researcher, patient)
        );
        vm.prank(researcher);
        cm.approveRequest(req, "");
        assertEq(_status(id), uint8(IConsentManager.RequestStatus.Pending));
    }

    function test_RevertWhen_RemovedDelegateApprovesDirectly() public {
        vm.startPrank(patient);
        cm.appointDelegate(delegate, ConsentSig.DELEGATE_SCOPES, ConsentSig.DELEGATE_MAX, ConsentSig.DELEGATE_HISTORY);
        cm.removeDelegate(delegate, false);
        vm.stopPrank();
        uint256 id = _request();

        vm.expectRevert(
            abi.encodeWithSelector(IConsentManager.ConsentManagerUnauthorized.selector, delegate, patient)
        );
        vm.prank(delegate);
        cm.approveRequest(req, KEYS_CID);
        assertEq(_status(id), uint8(IConsentManager.RequestStatus.Pending));
    }
}
