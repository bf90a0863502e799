// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Vm} from "forge-std/Test.sol";
import {IConsentManager} from "../../contracts/interfaces/IConsentManager.sol";
import {ConsentManagerBase} from "../utils/ConsentManagerBase.sol";

/// @notice Research requests: ids, accreditation, terms, approval, denial and status.
contract ConsentManagerRequestsTest is ConsentManagerBase {
    // ---------------------------------------------------------------- request ids

    function test_requestAccess_IdIsHashOfAbiEncodedRequest() public {
        IConsentManager.AccessRequest memory r = _researchRequest(T0);
        uint256 expected = uint256(keccak256(abi.encode(r)));

        vm.expectEmit(true, true, true, true, address(cm));
        emit IConsentManager.AccessRequested(
            expected, patient, researcher, RESEARCH_SCOPES, HRESCH, DURATION, T0, STUDY
        );
        vm.prank(researcher);
        uint256 id = cm.requestAccess(patient, RESEARCH_SCOPES, HRESCH, DURATION, STUDY);

        assertEq(id, expected);
        assertEq(_status(id), uint8(IConsentManager.RequestStatus.Pending));
    }

    function test_approveRequest_FindsRequestByAbiEncodedId() public {
        _request();
        IConsentManager.AccessRequest memory r = req;
        uint256 expected = uint256(keccak256(abi.encode(r)));
        assertEq(reqId, expected);

        vm.expectEmit(true, true, true, true, address(cm));
        emit IConsentManager.RequestApproved(expected, patient, researcher, T0 + DURATION);
        vm.prank(patient);
        cm.approveRequest(r, "");
        assertEq(_status(expected), uint8(IConsentManager.RequestStatus.Approved));
    }

    function test_denyRequest_FindsRequestByAbiEncodedId() public {
        _request();
        IConsentManager.AccessRequest memory r = req;
        uint256 expected = uint256(keccak256(abi.encode(r)));

        vm.expectEmit(true, true, true, true, address(cm));
        emit IConsentManager.RequestDenied(expected, patient, researcher);
        vm.prank(patient);
        cm.denyRequest(r);
        assertEq(_status(expected), uint8(IConsentManager.RequestStatus.Denied));
    }

    function test_RevertWhen_DecidingAlteredRequest() public {
        uint256 id = _request();
        // Each of the seven fields changed in turn: the decision hashes a different request,
        // which was never made.
        for (uint256 field; field < 7; ++field) {
            IConsentManager.AccessRequest memory r = req;
            if (field == 0) r.patient = patient2;
            else if (field == 1) r.researcher = stranger;
            else if (field == 2) r.scopes = ALL;
            else if (field == 3) r.purpose = TREAT;
            else if (field == 4) r.duration = DURATION + 1;
            else if (field == 5) r.requestedAt = T0 - 1;
            else r.studyId = keccak256("other study");
            uint256 alteredId = uint256(keccak256(abi.encode(r)));
            bytes memory err = abi.encodeWithSelector(
                IConsentManager.ConsentManagerRequestNotPending.selector,
                alteredId,
                IConsentManager.RequestStatus.None
            );
            vm.expectRevert(err);
            vm.prank(r.patient);
            cm.approveRequest(r, "");
            vm.expectRevert(err);
            vm.prank(r.patient);
            cm.denyRequest(r);
        }
        assertEq(_status(id), uint8(IConsentManager.RequestStatus.Pending));
        _assertNoAccess(patient, researcher);
    }

    // ---------------------------------------------------------------- requestAccess

    function test_RevertWhen_NonResearcherRequests() public {
        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerNotResearcher.selector, stranger));
        vm.prank(stranger);
        cm.requestAccess(patient, RESEARCH_SCOPES, HRESCH, DURATION, STUDY);

        // Being a provider is not enough.
        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerNotResearcher.selector, provider));
        vm.prank(provider);
        cm.requestAccess(patient, RESEARCH_SCOPES, HRESCH, DURATION, STUDY);
    }

    function test_RevertWhen_ResearcherAccreditationWithdrawn() public {
        vm.startPrank(admin);
        participants.revokeRole(participants.RESEARCHER_ROLE(), researcher);
        vm.stopPrank();
        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerNotResearcher.selector, researcher));
        vm.prank(researcher);
        cm.requestAccess(patient, RESEARCH_SCOPES, HRESCH, DURATION, STUDY);
    }

    function test_RevertWhen_RequestDurationZero() public {
        vm.expectRevert(
            abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidDuration.selector, uint40(0), 365 days)
        );
        vm.prank(researcher);
        cm.requestAccess(patient, RESEARCH_SCOPES, HRESCH, 0, STUDY);
    }

    function test_RevertWhen_RequestDurationTooLong() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IConsentManager.ConsentManagerInvalidDuration.selector, uint40(365 days + 1), 365 days
            )
        );
        vm.prank(researcher);
        cm.requestAccess(patient, RESEARCH_SCOPES, HRESCH, 365 days + 1, STUDY);

        // The maximum itself is allowed.
        vm.prank(researcher);
        uint256 id = cm.requestAccess(patient, RESEARCH_SCOPES, HRESCH, 365 days, STUDY);
        assertEq(_status(id), uint8(IConsentManager.RequestStatus.Pending));
    }

    function test_RevertWhen_RequestTermsInvalid() public {
        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidScopes.selector, uint8(0)));
        vm.prank(researcher);
        cm.requestAccess(patient, 0, HRESCH, DURATION, STUDY);

        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidScopes.selector, uint8(0x40)));
        vm.prank(researcher);
        cm.requestAccess(patient, 0x40, HRESCH, DURATION, STUDY);

        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerInvalidPurpose.selector, uint8(8)));
        vm.prank(researcher);
        cm.requestAccess(patient, RESEARCH_SCOPES, 8, DURATION, STUDY);
    }

    function test_RevertWhen_DuplicateRequestInSameBlock() public {
        uint256 id = _request();
        vm.expectRevert(abi.encodeWithSelector(IConsentManager.ConsentManagerDuplicateRequest.selector, id));
        vm.prank(researcher);
        cm.requestAccess(patient, RESEARCH_SCOPES, HRESCH, DURATION, STUDY);

        // A second later it is a new request.
        vm.warp(T0 + 1);
        uint256 later = _requestAt(T0 + 1);
        assertNotEq(later, id);
        assertEq(_status(later), uint8(IConsentManager.RequestStatus.Pending));
    }

    // ---------------------------------------------------------------- decisions

    function test_approveRequest_WindowStartsAtApproval() public {
        uint256 id = _request();
        uint40 t1 = T0 + 3 days;
        vm.warp(t1);

        vm.expectEmit(true, true, true, true, address(cm));
        emit IConsentManager.RequestApproved(id, patient, researcher, t1 + DURATION);
        vm.prank(patient);
        cm.approveRequest(req, "");

        _assertGrant(patient, researcher, t1, t1 + DURATION, RESEARCH_SCOPES, HRESCH, false, 1);
        assertTrue(cm.canRead(patient, researcher, LABORATORY));
        assertTrue(cm.canRead(patient, researcher, CONDITIONS));
        assertFalse(cm.canRead(patient, researcher, IMAGING));
        vm.warp(t1 + DURATION - 1);
        assertTrue(cm.canRead(patient, researcher, CONDITIONS));
        vm.warp(t1 + DURATION);
        assertFalse(cm.canRead(patient, researcher, CONDITIONS));
    }

    function test_approveRequest_KeysSharedOnlyWithKeys() public {
        _request();
        vm.recordLogs();
        vm.prank(patient);
        cm.approveRequest(req, "");
        Vm.Log[] memory logs = vm.getRecordedLogs();
        assertEq(logs.length, 1, "only RequestApproved");
        assertEq(logs[0].topics[0], IConsentManager.RequestApproved.selector);

        vm.warp(T0 + 1);
        _requestAt(T0 + 1);
        vm.expectEmit(true, true, true, true, address(cm));
        emit IConsentManager.KeysShared(patient, researcher, KEYS_CID);
        vm.prank(patient);
        cm.approveRequest(req, KEYS_CID);
    }

    function test_RevertWhen_ApprovedWithAMalformedKeysCid() public {
        uint256 id = _request();
        bytes[] memory bad = _malformedCids();
        for (uint256 i = 1; i < bad.length; ++i) {
            vm.expectRevert(_invalidCid(bad[i]));
            vm.prank(patient);
            cm.approveRequest(req, bad[i]);
        }
        assertEq(uint8(cm.requestStatus(id)), uint8(IConsentManager.RequestStatus.Pending));
        assertFalse(cm.canRead(patient, researcher, CONDITIONS));
    }

    function test_RevertWhen_ApprovedTwice() public {
        uint256 id = _request();
        vm.prank(patient);
        cm.approveRequest(req, "");

        vm.expectRevert(
            abi.encodeWithSelector(
                IConsentManager.ConsentManagerRequestNotPending.selector, id, IConsentManager.RequestStatus.Approved
            )
        );
        vm.prank(patient);
        cm.approveRequest(req, "");

        vm.expectRevert(
            abi.encodeWithSelector(
                IConsentManager.ConsentManagerRequestNotPending.selector, id, IConsentManager.RequestStatus.Approved
            )
        );
        vm.prank(patient);
        cm.denyRequest(req);
        assertEq(cm.grantOf(patient, researcher).nonce, 1);
    }

    function test_RevertWhen_DecidingDeniedRequest() public {
        uint256 id = _request();
        vm.prank(patient);
        cm.denyRequest(req);

        bytes memory err = abi.encodeWithSelector(
            IConsentManager.ConsentManagerRequestNotPending.selector, id, IConsentManager.RequestStatus.Denied
        );
        vm.expectRevert(err);
        vm.prank(patient);
        cm.approveRequest(req, "");
        vm.expectRevert(err);
        vm.prank(patient);
        cm.denyRequest(req);
        _assertNoAccess(patient, researcher);
    }

    function test_denyRequest_NoAccessAndNonceAdvances() public {
        uint256 id = _request();
        vm.expectEmit(true, true, true, true, address(cm));
        emit IConsentManager.RequestDenied(id, patient, researcher);
        vm.prank(patient);
        cm.denyRequest(req);

        assertEq(_status(id), uint8(IConsentManager.RequestStatus.Denied));
        _assertGrant(patient, researcher, 0, 0, 0, 0, false, 1);
        _assertNoAccess(patient, researcher);
    }

    function test_denyRequest_KeepsExistingGrant() public {
        // Denying a new request does not touch the researcher's current grant terms.
        _grantDirect(researcher, SCOPES, FROM, UNTIL);
        _request();
        vm.prank(patient);
        cm.denyRequest(req);
        _assertGrant(patient, researcher, FROM, UNTIL, SCOPES, TREAT, false, 2);
        assertTrue(cm.canRead(patient, researcher, LABORATORY));
    }

    function test_requestStatus_Lifecycle() public {
        IConsentManager.AccessRequest memory r = _researchRequest(T0);
        uint256 expected = uint256(keccak256(abi.encode(r)));
        assertEq(_status(expected), uint8(IConsentManager.RequestStatus.None));
        _request();
        assertEq(_status(expected), uint8(IConsentManager.RequestStatus.Pending));
        vm.prank(patient);
        cm.approveRequest(r, "");
        assertEq(_status(expected), uint8(IConsentManager.RequestStatus.Approved));
    }

    function test_RevertWhen_ApprovingUnknownRequest() public {
        IConsentManager.AccessRequest memory r = _researchRequest(T0);
        vm.expectRevert(
            abi.encodeWithSelector(
                IConsentManager.ConsentManagerRequestNotPending.selector,
                uint256(keccak256(abi.encode(r))),
                IConsentManager.RequestStatus.None
            )
        );
        vm.prank(patient);
        cm.approveRequest(r, "");
        _assertNoAccess(patient, researcher);
    }

    // ---------------------------------------------------------------- fuzz

    function testFuzz_requestId_MatchesAbiEncodeAndIsFound(
        uint256 scopes,
        uint256 purpose,
        uint256 duration,
        bytes32 studyId,
        uint256 t,
        bool approve
    ) public {
        IConsentManager.AccessRequest memory r = IConsentManager.AccessRequest({
            patient: patient,
            researcher: researcher,
            scopes: uint8(bound(scopes, 1, ALL)),
            purpose: uint8(bound(purpose, 0, 7)),
            duration: uint40(bound(duration, 1, 365 days)),
            requestedAt: uint40(bound(t, T0, T0 + 10 * 365 days)),
            studyId: studyId
        });
        vm.warp(r.requestedAt);
        vm.prank(researcher);
        uint256 id = cm.requestAccess(patient, r.scopes, r.purpose, r.duration, r.studyId);
        assertEq(id, uint256(keccak256(abi.encode(r))));

        vm.prank(patient);
        if (approve) {
            cm.approveRequest(r, "");
            assertEq(_status(id), uint8(IConsentManager.RequestStatus.Approved));
            _assertGrant(
                patient, researcher, r.requestedAt, r.requestedAt + r.duration, r.scopes, r.purpose, false, 1
            );
        } else {
            cm.denyRequest(r);
            assertEq(_status(id), uint8(IConsentManager.RequestStatus.Denied));
        }
    }
}
