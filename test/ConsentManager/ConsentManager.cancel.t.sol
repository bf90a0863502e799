// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IConsentManager} from "../../contracts/interfaces/IConsentManager.sol";
import {ConsentManagerBase} from "../utils/ConsentManagerBase.sol";
import {ConsentSig} from "../utils/ConsentSig.sol";

/// @notice Cancellable signatures and bounded research requests (the review's L-1 and L-5):
/// `invalidateNonce` voids outstanding signatures without granting; requests expire after
/// `REQUEST_TTL`; research grants hold only while the researcher is accredited.
contract ConsentManagerCancelTest is ConsentManagerBase {
    uint40 internal constant TTL = 30 days;

    function _withdrawResearcher() internal {
        bytes32 role = participants.RESEARCHER_ROLE();
        vm.prank(admin);
        participants.revokeRole(role, researcher);
    }

    // ---------------------------------------------------------------- invalidateNonce (L-1)

    function test_signature_CannotBeCancelledWithoutGranting_IsFixed() public {
        IConsentManager.Authorization memory auth = _signOp(Op.Grant, patientPk, 0);

        vm.expectEmit(true, true, true, true, address(cm));
        emit IConsentManager.NonceInvalidated(patient, doctor, 1);
        vm.prank(patient);
        cm.invalidateNonce(doctor);

        // No grant was made to cancel it, and the signature is void.
        _assertGrant(patient, doctor, 0, 0, 0, 0, false, 1);
        vm.expectRevert(
            abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidNonce.selector, patient, doctor, 1, 0)
        );
        _submit(Op.Grant, auth);
        _assertNoAccess(patient, doctor);
    }

    function test_invalidateNonce_VoidsAnAppointmentSignature() public {
        IConsentManager.Authorization memory auth = _signOp(Op.Appoint, patientPk, 0);
        vm.prank(patient);
        cm.invalidateNonce(delegate);
        assertEq(cm.delegationOf(patient, delegate).nonce, 1);
        vm.expectRevert(
            abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidNonce.selector, patient, delegate, 1, 0)
        );
        _submit(Op.Appoint, auth);
        assertFalse(cm.delegationOf(patient, delegate).appointed);
    }

    function test_invalidateNonce_VoidsAnApprovalSignatureAndKeepsTheGrant() public {
        _grantDirect(researcher, SCOPES, FROM, UNTIL);
        _request();
        IConsentManager.Authorization memory auth = _signOp(Op.Approve, patientPk, 1);
        vm.prank(patient);
        cm.invalidateNonce(researcher);
        vm.expectRevert(
            abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidNonce.selector, patient, researcher, 2, 1)
        );
        _submit(Op.Approve, auth);
        _assertGrant(patient, researcher, FROM, UNTIL, SCOPES, TREAT, false, 2);
        assertEq(_status(reqId), uint8(IConsentManager.RequestStatus.Pending));
    }

    function test_invalidateNonceFor_ByDelegate() public {
        _appointDelegate();
        IConsentManager.Authorization memory auth = _signOp(Op.Grant, patientPk, 0);
        vm.expectEmit(true, true, true, true, address(cm));
        emit IConsentManager.ActedAsDelegate(patient, delegate);
        vm.expectEmit(true, true, true, true, address(cm));
        emit IConsentManager.NonceInvalidated(patient, doctor, 1);
        vm.prank(delegate);
        cm.invalidateNonceFor(patient, doctor);
        vm.expectRevert(
            abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidNonce.selector, patient, doctor, 1, 0)
        );
        _submit(Op.Grant, auth);
    }

    function test_delegate_VoidingThePatientsSignedRevokeOfItsOwnGrant_IsRefused() public {
        // The caregiver also reads the patient's records; the patient signs a revoke of that grant
        // for a relayer. The delegate must not void it by bumping its own relationship's nonce.
        _grantDirect(delegate, SCOPES, FROM, UNTIL);
        _appointDelegate();
        IConsentManager.Authorization memory auth =
            _sign(patientPk, keccak256(abi.encode(cm.REVOKE_TYPEHASH(), patient, delegate, 1, DEADLINE)), 1);
        vm.expectRevert(
            abi.encodeWithSelector(IConsentManager.ConsentManagerDelegateSelfGrant.selector, delegate)
        );
        vm.prank(delegate);
        cm.invalidateNonceFor(patient, delegate);

        // Nor by denying a request of its own (a delegate that is also a researcher).
        _accreditResearcher(participants, delegate);
        vm.prank(delegate);
        cm.requestAccess(patient, RESEARCH_SCOPES, HRESCH, DURATION, STUDY);
        IConsentManager.AccessRequest memory own = _researchRequest(T0);
        own.researcher = delegate;
        vm.expectRevert(
            abi.encodeWithSelector(IConsentManager.ConsentManagerDelegateSelfGrant.selector, delegate)
        );
        vm.prank(delegate);
        cm.denyRequest(own);

        cm.revokeBySig(patient, delegate, auth);
        _assertNoAccess(patient, delegate);
        // The patient may still void its own signatures about the delegate, and deny its request.
        vm.prank(patient);
        cm.invalidateNonceFor(patient, delegate);
        vm.prank(patient);
        cm.denyRequest(own);
    }

    function test_RevertWhen_StrangerOrRemovedDelegateInvalidates() public {
        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerUnauthorized.selector, stranger, patient));
        vm.prank(stranger);
        cm.invalidateNonceFor(patient, doctor);

        vm.startPrank(patient);
        cm.appointDelegate(delegate, ConsentSig.DELEGATE_SCOPES, ConsentSig.DELEGATE_MAX, ConsentSig.DELEGATE_HISTORY);
        cm.removeDelegate(delegate, false);
        vm.stopPrank();
        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerUnauthorized.selector, delegate, patient));
        vm.prank(delegate);
        cm.invalidateNonceFor(patient, doctor);
        assertEq(cm.grantOf(patient, doctor).nonce, 0);
    }

    function test_RevertWhen_InvalidatingTheZeroAddress() public {
        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidGrantee.selector, address(0)));
        vm.prank(patient);
        cm.invalidateNonce(address(0));
    }

    // ---------------------------------------------------------------- requests (L-5)

    function test_request_NeverExpiring_IsRefusedAfterItsTtl() public {
        uint256 id = _request();
        vm.warp(T0 + TTL);
        vm.expectRevert(
            abi.encodeWithSelector(IConsentManager.ConsentManagerRequestExpired.selector, id, uint256(T0 + TTL))
        );
        vm.prank(patient);
        cm.approveRequest(req, "");
        _assertNoAccess(patient, researcher);
        assertEq(_status(id), uint8(IConsentManager.RequestStatus.Pending));
        // It can still be denied (closing it).
        vm.prank(patient);
        cm.denyRequest(req);
        assertEq(_status(id), uint8(IConsentManager.RequestStatus.Denied));
    }

    function test_request_ApprovableJustBeforeItsTtl() public {
        _request();
        vm.warp(T0 + TTL - 1);
        vm.prank(patient);
        cm.approveRequest(req, "");
        assertTrue(cm.canRead(patient, researcher, CONDITIONS));
    }

    function test_request_ApprovableAfterLosingAccreditation_OpensNothing() public {
        _request();
        _withdrawResearcher();
        // The approval records the patient's answer, but the grant rests on an accreditation
        // the researcher no longer holds: it opens nothing, by transaction or by signature.
        vm.prank(patient);
        cm.approveRequest(req, "");
        _assertNoAccess(patient, researcher);
        assertFalse(cm.canReadRecord(patient, researcher, CONDITIONS, T0));
        assertEq(uint8(cm.grantOf(patient, researcher).kind), uint8(IConsentManager.GrantKind.Research));
    }

    function test_researchGrant_KeptAfterLosingAccreditation_IsRefused() public {
        _request();
        vm.prank(patient);
        cm.approveRequest(req, "");
        assertEq(uint8(cm.grantOf(patient, researcher).kind), uint8(IConsentManager.GrantKind.Research));
        assertTrue(cm.canRead(patient, researcher, CONDITIONS));
        _withdrawResearcher();
        _assertNoAccess(patient, researcher);
        assertFalse(cm.canReadRecord(patient, researcher, CONDITIONS, T0));
    }

    function test_patientGrant_ToAResearcherIsNotARequest() public {
        // A grant the patient makes directly is the patient's, whatever the grantee's role.
        _grantDirect(researcher, SCOPES, FROM, UNTIL);
        _withdrawResearcher();
        assertTrue(cm.canRead(patient, researcher, LABORATORY));
    }
}
