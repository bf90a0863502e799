// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ParticipantRegistry} from "../contracts/ParticipantRegistry.sol";
import {RecordRegistry} from "../contracts/RecordRegistry.sol";
import {IEmergencyAccess} from "../contracts/interfaces/IEmergencyAccess.sol";
import {IParticipantRegistry} from "../contracts/interfaces/IParticipantRegistry.sol";
import {Base} from "./utils/Base.sol";
import {EmergencyAccessMock} from "./utils/EmergencyAccessMock.sol";
import {RecordHandler} from "./utils/RecordHandler.sol";

/// forge-config: default.invariant.runs = 64
/// forge-config: default.invariant.depth = 50
/// forge-config: default.invariant.fail-on-revert = true
contract RecordInvariantsTest is Base {
    RecordRegistry internal records;
    RecordHandler internal handler;

    function setUp() public {
        vm.warp(T0);
        ParticipantRegistry participants = _deployParticipants();
        EmergencyAccessMock emergency = new EmergencyAccessMock();
        records = new RecordRegistry(IParticipantRegistry(address(participants)), IEmergencyAccess(address(emergency)));
        vm.prank(patient);
        participants.register(hex"01aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
        address[] memory providers = new address[](3);
        providers[0] = provider;
        providers[1] = doctor;
        providers[2] = guardian;
        for (uint256 i; i < providers.length; ++i) {
            _accreditProvider(participants, providers[i]);
        }
        handler = new RecordHandler(records, emergency, patient, providers, stranger);

        bytes4[] memory selectors = new bytes4[](4);
        selectors[0] = RecordHandler.write.selector;
        selectors[1] = RecordHandler.setWriter.selector;
        selectors[2] = RecordHandler.removeWriter.selector;
        selectors[3] = RecordHandler.setEmergency.selector;
        targetContract(address(handler));
        targetSelector(FuzzSelector({addr: address(handler), selectors: selectors}));
    }

    /// No write by anyone the patient did not allow (care team, in its categories, or a live
    /// emergency covering the category) ever lands.
    function invariant_noWriteByANonWriter() public view {
        assertEq(handler.ghost_unauthorizedLanded(), 0);
    }

    /// Every allowed write lands, whatever the others wrote before it (no stale positions).
    function invariant_allowedWritesNeverRefused() public view {
        assertEq(handler.ghost_allowedRefused(), 0);
    }

    /// The log's length is the sum of its authors' sequence numbers: each record used exactly one.
    function invariant_seqsAccountForEveryRecord() public view {
        address[] memory authors = handler.authors();
        uint256 total;
        for (uint256 i; i < authors.length; ++i) {
            (, uint64 seq) = records.writerOf(patient, authors[i]);
            total += seq;
        }
        (, uint64 count) = records.logOf(patient);
        assertEq(total, count);
        assertEq(count, handler.ghost_landed());
    }
}
