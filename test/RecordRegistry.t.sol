// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ParticipantRegistry} from "../contracts/ParticipantRegistry.sol";
import {RecordRegistry} from "../contracts/RecordRegistry.sol";
import {IEmergencyAccess} from "../contracts/interfaces/IEmergencyAccess.sol";
import {IParticipantRegistry} from "../contracts/interfaces/IParticipantRegistry.sol";
import {IRecordRegistry} from "../contracts/interfaces/IRecordRegistry.sol";
import {Base} from "./utils/Base.sol";
import {EmergencyAccessMock} from "./utils/EmergencyAccessMock.sol";

/// The record log's shared fixture: a registered patient and doctor, an accredited provider on
/// the patient's care team for every category, and a consent stand-in for emergencies.
abstract contract RecordRegistryBase is Base {
    ParticipantRegistry internal participants;
    RecordRegistry internal records;
    EmergencyAccessMock internal emergency;

    function setUp() public virtual {
        vm.warp(T0);
        participants = _deployParticipants();
        emergency = new EmergencyAccessMock();
        records = new RecordRegistry(IParticipantRegistry(address(participants)), IEmergencyAccess(address(emergency)));

        vm.prank(patient);
        participants.register(hex"01aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
        vm.prank(doctor);
        participants.register(hex"01dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd");
        _accreditProvider(participants, provider);
        _accreditProvider(participants, doctor);
        _setWriter(patient, provider, ALL);
    }

    // ---------------------------------------------------------------- helpers

    /// The documented preimage of {IRecordRegistry-RecordAdded}'s recordHash, rebuilt independently:
    /// it repeats RecordRegistry._hashRecord on purpose (a test oracle), so keep the copy.
    function _expectedHash(
        bytes32 previousHash,
        address patient_,
        uint64 index,
        address author,
        uint64 seq,
        uint8 category,
        uint64 timestamp,
        bytes32 contentHash,
        bytes memory cid,
        bytes memory keysCid
    ) internal pure returns (bytes32) {
        return keccak256(
            abi.encode(
                previousHash,
                patient_,
                index,
                author,
                seq,
                category,
                timestamp,
                contentHash,
                keccak256(cid),
                keccak256(keysCid)
            )
        );
    }

    function _setWriter(address patient_, address writer, uint8 categories) internal {
        vm.prank(patient_);
        records.setWriter(writer, categories);
    }

    function _seqOf(address patient_, address author) internal view returns (uint64 seq) {
        (, seq) = records.writerOf(patient_, author);
    }

    function _assertLog(address patient_, bytes32 head, uint64 count) internal view {
        (bytes32 actualHead, uint64 actualCount) = records.logOf(patient_);
        assertEq(actualHead, head, "head");
        assertEq(actualCount, count, "count");
    }

    /// Adds a record on top of the log's current head and checks its event (position and the
    /// author's sequence number assigned on chain), return value and the new log state.
    function _add(
        address author,
        address patient_,
        uint8 category,
        uint64 timestamp,
        bytes32 contentHash,
        bytes memory cid,
        bytes memory keysCid
    ) internal returns (bytes32 recordHash) {
        (bytes32 previousHash, uint64 index) = records.logOf(patient_);
        uint64 seq = _seqOf(patient_, author);
        bytes32 expected =
            _expectedHash(previousHash, patient_, index, author, seq, category, timestamp, contentHash, cid, keysCid);

        vm.expectEmit(true, true, true, true, address(records));
        emit IRecordRegistry.RecordAdded(
            patient_, index, author, seq, expected, category, timestamp, contentHash, cid, keysCid
        );
        vm.prank(author);
        recordHash = records.addRecord(patient_, seq, cid, contentHash, category, keysCid);

        assertEq(recordHash, expected, "returned recordHash");
        _assertLog(patient_, expected, index + 1);
        assertEq(_seqOf(patient_, author), seq + 1, "author's next seq");
    }

    function _addLab(address author, address patient_) internal returns (bytes32) {
        return _add(author, patient_, LABORATORY, T0, CONTENT_HASH, CID, KEYS_CID);
    }

    /// `author` adds a record of `category` for `patient_` and is refused with `err`; nothing changes.
    function _assertAddRefused(address author, address patient_, uint8 category, bytes memory err) internal {
        (bytes32 head, uint64 count) = records.logOf(patient_);
        uint64 seq = _seqOf(patient_, author);
        vm.expectRevert(err);
        vm.prank(author);
        records.addRecord(patient_, seq, CID, CONTENT_HASH, category, KEYS_CID);
        _assertLog(patient_, head, count);
        assertEq(_seqOf(patient_, author), seq, "seq unchanged");
    }

    function _unauthorized(address author, address patient_) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(IRecordRegistry.RecordRegistryUnauthorizedAuthor.selector, author, patient_);
    }

    function _notAllowed(address author, address patient_, uint8 category) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(
            IRecordRegistry.RecordRegistryCategoryNotAllowed.selector, author, patient_, category
        );
    }

    function _pointers(uint256 n, uint256 salt) internal pure returns (IRecordRegistry.Pointer[] memory pointers) {
        pointers = new IRecordRegistry.Pointer[](n);
        for (uint256 i; i < n; ++i) {
            pointers[i] = IRecordRegistry.Pointer({
                cid: _cid(abi.encode("batch ciphertext", salt, i)),
                contentHash: keccak256(abi.encode("batch content", salt, i)),
                category: uint8((i + salt % 6) % 6),
                keysCid: _cid(abi.encode("batch keys", salt))
            });
        }
    }
}

contract RecordRegistryTest is RecordRegistryBase {
    // ---------------------------------------------------------------- constructor / views

    function test_constructor_SetsParticipantsAndConsent() public view {
        assertEq(address(records.participants()), address(participants));
        assertEq(address(records.consent()), address(emergency));
        assertEq(records.CATEGORY_COUNT(), 6);
        assertEq(records.DISPUTED(), 1);
        assertEq(records.HIDDEN(), 2);
    }

    function test_logOf_EmptyBeforeFirstRecord() public view {
        _assertLog(patient, bytes32(0), 0);
        _assertLog(stranger, bytes32(0), 0);
    }

    // ---------------------------------------------------------------- addRecord: who may write

    function test_addRecord_WriterAddsForRegisteredPatient() public {
        _addLab(provider, patient);
    }

    function test_addRecord_PatientAddsOwnRecord() public {
        assertFalse(participants.isProvider(patient));
        _add(patient, patient, NOTES, T0, CONTENT_HASH, CID, KEYS_CID);
    }

    function test_addRecord_ProviderNeedNotBeRegistered() public {
        assertFalse(participants.isRegistered(provider));
        _add(provider, patient, IMAGING, T0, CONTENT_HASH, CID, KEYS_CID);
    }

    function test_provider_without_consent_cannot_write() public {
        // M-9: an accredited provider the patient never allowed, with no emergency, is refused,
        // however many times it tries.
        assertTrue(participants.isProvider(doctor));
        for (uint8 category; category < CATEGORY_COUNT; ++category) {
            _assertAddRefused(doctor, patient, category, _unauthorized(doctor, patient));
        }
        vm.expectRevert(_unauthorized(doctor, patient));
        vm.prank(doctor);
        records.addRecords(patient, 0, _pointers(3, 1));
        _assertLog(patient, bytes32(0), 0);
    }

    function test_writer_cannot_write_outside_its_categories() public {
        // A lab-only writer cannot file a psychiatric note as "notes" (or anything but laboratory).
        _setWriter(patient, doctor, uint8(1 << LABORATORY));
        _add(doctor, patient, LABORATORY, T0, CONTENT_HASH, CID, KEYS_CID);
        for (uint8 category = IMAGING; category < CATEGORY_COUNT; ++category) {
            _assertAddRefused(doctor, patient, category, _notAllowed(doctor, patient, category));
        }
        // A batch with one record outside the categories is refused whole.
        IRecordRegistry.Pointer[] memory pointers = _pointers(2, 0);
        pointers[0].category = LABORATORY;
        pointers[1].category = NOTES;
        vm.expectRevert(_notAllowed(doctor, patient, NOTES));
        vm.prank(doctor);
        records.addRecords(patient, 1, pointers);
        (, uint64 count) = records.logOf(patient);
        assertEq(count, 1);
    }

    function test_concurrent_writers_never_revert_stale() public {
        // Two writers prepare their records without knowing each other's (same block, same
        // head): both land, positions assigned in arrival order, each bound to its own seq.
        _setWriter(patient, doctor, ALL);
        bytes32 contentA = keccak256("by provider");
        bytes32 contentB = keccak256("by doctor");
        vm.prank(provider);
        bytes32 h0 = records.addRecord(patient, 0, CID, contentA, LABORATORY, KEYS_CID);
        vm.prank(doctor);
        bytes32 h1 = records.addRecord(patient, 0, CID, contentB, IMAGING, KEYS_CID);
        vm.prank(patient);
        bytes32 h2 = records.addRecord(patient, 0, CID, CONTENT_HASH, NOTES, KEYS_CID);

        assertEq(h0, _expectedHash(bytes32(0), patient, 0, provider, 0, LABORATORY, T0, contentA, CID, KEYS_CID));
        assertEq(h1, _expectedHash(h0, patient, 1, doctor, 0, IMAGING, T0, contentB, CID, KEYS_CID));
        assertEq(h2, _expectedHash(h1, patient, 2, patient, 0, NOTES, T0, CONTENT_HASH, CID, KEYS_CID));
        _assertLog(patient, h2, 3);
        assertEq(_seqOf(patient, provider), 1);
        assertEq(_seqOf(patient, doctor), 1);
        assertEq(_seqOf(patient, patient), 1);
    }

    function test_RevertWhen_SeqStale() public {
        // Only the author's own writes move its seq: a record sealed for a seq its author has
        // already used (or not reached) is refused, never stored bound to the wrong place.
        _setWriter(patient, doctor, ALL);
        _addLab(provider, patient);
        _addLab(doctor, patient); // another writer's record does not make the provider's stale
        bytes32 head = _addLab(provider, patient);
        bytes memory stale =
            abi.encodeWithSelector(IRecordRegistry.RecordRegistryStaleSeq.selector, provider, patient, 2, 1);
        vm.expectRevert(stale);
        vm.prank(provider);
        records.addRecord(patient, 1, CID, CONTENT_HASH, LABORATORY, KEYS_CID);
        bytes memory ahead =
            abi.encodeWithSelector(IRecordRegistry.RecordRegistryStaleSeq.selector, provider, patient, 2, 3);
        vm.expectRevert(ahead);
        vm.prank(provider);
        records.addRecords(patient, 3, _pointers(2, 0));
        _assertLog(patient, head, 3);
    }

    function test_addRecord_SeqCountsOnlyTheAuthorsOwnRecords() public {
        _setWriter(patient, doctor, ALL);
        _addLab(provider, patient);
        _addLab(doctor, patient);
        _addLab(provider, patient);
        _addLab(patient, patient);
        _addLab(provider, patient);
        assertEq(_seqOf(patient, provider), 3);
        assertEq(_seqOf(patient, doctor), 1);
        assertEq(_seqOf(patient, patient), 1);
        // Per patient: the provider's seq in the doctor's log starts again at 0.
        _setWriter(doctor, provider, ALL);
        _addLab(provider, doctor);
        assertEq(_seqOf(doctor, provider), 1);
    }

    function test_RevertWhen_AuthorIsStranger() public {
        assertFalse(participants.isProvider(stranger));
        _assertAddRefused(stranger, patient, LABORATORY, _unauthorized(stranger, patient));
    }

    function test_RevertWhen_PatientWritesAnotherPatientsLog() public {
        // Being a registered patient does not let one write into someone else's log.
        _assertAddRefused(patient, doctor, LABORATORY, _unauthorized(patient, doctor));
    }

    function test_RevertWhen_ResearcherAuthors() public {
        _accreditResearcher(participants, stranger);
        _assertAddRefused(stranger, patient, LABORATORY, _unauthorized(stranger, patient));
    }

    function test_RevertWhen_WriterLosesAccreditation() public {
        _addLab(provider, patient);
        vm.startPrank(admin);
        participants.revokeRole(participants.PROVIDER_ROLE(), provider);
        vm.stopPrank();
        bytes memory err = abi.encodeWithSelector(IRecordRegistry.RecordRegistryNotAProvider.selector, provider);
        _assertAddRefused(provider, patient, LABORATORY, err);
        vm.expectRevert(err);
        vm.prank(provider);
        records.addRecords(patient, 1, _pointers(1, 0));
    }

    function test_RevertWhen_WriterRemoved() public {
        _addLab(provider, patient);
        vm.expectEmit(true, true, true, true, address(records));
        emit IRecordRegistry.WriterRemoved(patient, provider);
        vm.prank(patient);
        records.removeWriter(provider);
        _assertAddRefused(provider, patient, LABORATORY, _unauthorized(provider, patient));
        (uint8 categories, uint64 seq) = records.writerOf(patient, provider);
        assertEq(categories, 0);
        assertEq(seq, 1, "seq kept");
    }

    function test_addRecord_SeqIsNeverReusedAfterRemoveAndReturn() public {
        _addLab(provider, patient);
        _addLab(provider, patient);
        vm.prank(patient);
        records.removeWriter(provider);
        _setWriter(patient, provider, ALL);
        assertEq(_seqOf(patient, provider), 2);
        _addLab(provider, patient);
        assertEq(_seqOf(patient, provider), 3);
    }

    // ---------------------------------------------------------------- addRecord: emergency

    function test_addRecord_ProviderInEmergencyWrites() public {
        emergency.setScopes(patient, doctor, ALL);
        _add(doctor, patient, NOTES, T0, CONTENT_HASH, CID, KEYS_CID);
        assertEq(_seqOf(patient, doctor), 1);
    }

    function test_addRecord_EmergencyWidensACareTeamWriter() public {
        _setWriter(patient, doctor, uint8(1 << LABORATORY));
        _assertAddRefused(doctor, patient, IMAGING, _notAllowed(doctor, patient, IMAGING));
        emergency.setScopes(patient, doctor, uint8(1 << IMAGING));
        _add(doctor, patient, IMAGING, T0, CONTENT_HASH, CID, KEYS_CID);
        _add(doctor, patient, LABORATORY, T0, CONTENT_HASH, CID, KEYS_CID);
        _assertAddRefused(doctor, patient, NOTES, _notAllowed(doctor, patient, NOTES));
    }

    function test_RevertWhen_EmergencyDoesNotCoverCategory() public {
        emergency.setScopes(patient, doctor, uint8(1 << LABORATORY));
        _assertAddRefused(doctor, patient, NOTES, _notAllowed(doctor, patient, NOTES));
        IRecordRegistry.Pointer[] memory pointers = _pointers(2, 0);
        pointers[0].category = LABORATORY;
        pointers[1].category = NOTES;
        vm.expectRevert(_notAllowed(doctor, patient, NOTES));
        vm.prank(doctor);
        records.addRecords(patient, 0, pointers);
    }

    function test_RevertWhen_EmergencyEnded() public {
        emergency.setScopes(patient, doctor, ALL);
        _addLab(doctor, patient);
        emergency.setScopes(patient, doctor, 0);
        _assertAddRefused(doctor, patient, LABORATORY, _unauthorized(doctor, patient));
    }

    function test_RevertWhen_EmergencyProviderNotAccredited() public {
        // The consent contract's answer is not trusted for accreditation: it is checked here too.
        emergency.setScopes(patient, stranger, ALL);
        bytes memory err = abi.encodeWithSelector(IRecordRegistry.RecordRegistryNotAProvider.selector, stranger);
        _assertAddRefused(stranger, patient, LABORATORY, err);
    }

    function test_RevertWhen_ConsentCannotAnswer() public {
        // Fail closed: an emergency that cannot be confirmed grants nothing.
        emergency.setScopes(patient, doctor, ALL);
        emergency.setBroken(true);
        _assertAddRefused(doctor, patient, LABORATORY, _unauthorized(doctor, patient));
        // A care-team writer inside its categories never asks the consent contract.
        _addLab(provider, patient);
    }

    // ---------------------------------------------------------------- addRecord: patient

    function test_RevertWhen_PatientUnregistered() public {
        assertFalse(participants.isRegistered(stranger));
        bytes memory err = abi.encodeWithSelector(IRecordRegistry.RecordRegistryUnregisteredPatient.selector, stranger);
        _assertAddRefused(provider, stranger, LABORATORY, err);
    }

    function test_RevertWhen_UnregisteredPatientAddsOwnRecord() public {
        bytes memory err = abi.encodeWithSelector(IRecordRegistry.RecordRegistryUnregisteredPatient.selector, stranger);
        _assertAddRefused(stranger, stranger, LABORATORY, err);
    }

    // ---------------------------------------------------------------- addRecord: category, pointers

    function test_addRecord_AllCategories() public {
        for (uint8 category; category < 6; ++category) {
            _add(provider, patient, category, T0, keccak256(abi.encode(category)), CID, KEYS_CID);
        }
        (, uint64 count) = records.logOf(patient);
        assertEq(count, 6);
    }

    function testFuzz_RevertWhen_UnknownCategory(uint256 category, bool byPatient) public {
        category = bound(category, 6, type(uint8).max);
        address author = byPatient ? patient : provider;
        bytes memory err = abi.encodeWithSelector(IRecordRegistry.RecordRegistryUnknownCategory.selector, category);
        _assertAddRefused(author, patient, uint8(category), err);
    }

    function test_RevertWhen_ContentHashZero() public {
        vm.expectRevert(abi.encodeWithSelector(IRecordRegistry.RecordRegistryEmptyPointer.selector));
        vm.prank(provider);
        records.addRecord(patient, 0, CID, bytes32(0), LABORATORY, KEYS_CID);
        _assertLog(patient, bytes32(0), 0);
    }

    function test_RevertWhen_CidMalformed() public {
        bytes[] memory bad = _malformedCids();
        for (uint256 i; i < bad.length; ++i) {
            // The patient's own write and a care-team provider's, as the ciphertext's CID and as
            // the key bundle's.
            for (uint256 a; a < 2; ++a) {
                address author = a == 0 ? patient : provider;
                vm.startPrank(author);
                vm.expectRevert(_invalidCid(bad[i]));
                records.addRecord(patient, 0, bad[i], CONTENT_HASH, LABORATORY, KEYS_CID);
                vm.expectRevert(_invalidCid(bad[i]));
                records.addRecord(patient, 0, CID, CONTENT_HASH, LABORATORY, bad[i]);
                vm.stopPrank();
                assertEq(_seqOf(patient, author), 0);
            }
        }
        _assertLog(patient, bytes32(0), 0);
    }

    function test_RevertWhen_BatchHoldsAMalformedCid() public {
        bytes[] memory bad = _malformedCids();
        for (uint256 i; i < bad.length; ++i) {
            IRecordRegistry.Pointer[] memory pointers = _pointers(3, i);
            if (i % 2 == 0) pointers[2].cid = bad[i];
            else pointers[1].keysCid = bad[i];
            vm.expectRevert(_invalidCid(bad[i]));
            vm.prank(provider);
            records.addRecords(patient, 0, pointers);
        }
        _assertLog(patient, bytes32(0), 0);
        assertEq(_seqOf(patient, provider), 0);
    }

    // ---------------------------------------------------------------- hash chain

    function test_addRecord_HashChain() public {
        bytes memory cid1 = _cid("ciphertext 1");
        bytes memory keys1 = _cid("keys 1");
        bytes32 content1 = keccak256("ciphertext 1");
        bytes memory cid2 = abi.encodePacked(hex"01701220", keccak256("dag-pb root 2"));
        bytes memory keys2 = _cid("keys 2");
        bytes32 content2 = keccak256("ciphertext 2");

        bytes32 h0 = _add(provider, patient, LABORATORY, T0, CONTENT_HASH, CID, KEYS_CID);
        uint64 t1 = T0 + 1 days;
        vm.warp(t1);
        bytes32 h1 = _add(patient, patient, NOTES, t1, content1, cid1, keys1);
        uint64 t2 = T0 + 8 days;
        vm.warp(t2);
        bytes32 h2 = _add(provider, patient, IMAGING, t2, content2, cid2, keys2);

        assertEq(h2, _expectedHash(h1, patient, 2, provider, 1, IMAGING, t2, content2, cid2, keys2));
        assertNotEq(h0, h1);
        assertNotEq(h1, h2);
        // Dropping a record breaks the chain, and so does changing the author's seq.
        assertNotEq(_expectedHash(h0, patient, 1, provider, 1, IMAGING, t2, content2, cid2, keys2), h2);
        assertNotEq(_expectedHash(h1, patient, 2, provider, 0, IMAGING, t2, content2, cid2, keys2), h2);
    }

    function test_addRecord_AuthorIsBoundIntoHash() public {
        uint256 snapshot = vm.snapshotState();
        bytes32 byProvider = _addLab(provider, patient);
        vm.revertToState(snapshot);
        bytes32 byPatient = _addLab(patient, patient);
        assertNotEq(byProvider, byPatient);
    }

    function test_addRecord_LogsArePerPatient() public {
        bytes32 patientHead = _addLab(provider, patient);
        _setWriter(doctor, provider, ALL);
        bytes32 doctorHead = _addLab(provider, doctor);
        assertEq(
            doctorHead,
            _expectedHash(bytes32(0), doctor, 0, provider, 0, LABORATORY, T0, CONTENT_HASH, CID, KEYS_CID)
        );
        _assertLog(patient, patientHead, 1);
        _assertLog(doctor, doctorHead, 1);
    }

    function testFuzz_addRecord_HashMatchesPreimage(
        bytes32 cidDigest,
        bytes32 keysCidDigest,
        bool dagPb,
        uint256 contentHash,
        uint256 category,
        uint256 timestamp,
        bool byPatient
    ) public {
        bytes memory cid = abi.encodePacked(dagPb ? bytes4(0x01701220) : bytes4(0x01551220), cidDigest);
        bytes memory keysCid = abi.encodePacked(bytes4(0x01551220), keysCidDigest);
        bytes32 content = bytes32(bound(contentHash, 1, type(uint256).max));
        uint8 cat = uint8(bound(category, 0, 5));
        uint64 ts = uint64(bound(timestamp, T0, type(uint64).max));
        address author = byPatient ? patient : provider;

        bytes32 first = _addLab(provider, patient);
        vm.warp(ts);
        bytes32 second = _add(author, patient, cat, ts, content, cid, keysCid);
        uint64 seq = byPatient ? 0 : 1;
        assertEq(second, _expectedHash(first, patient, 1, author, seq, cat, ts, content, cid, keysCid));
    }

    // ---------------------------------------------------------------- addRecords (batches)

    function test_addRecords_SameChainAsSingleAdds() public {
        _addLab(provider, patient);
        IRecordRegistry.Pointer[] memory pointers = _pointers(4, 7);

        uint256 snapshot = vm.snapshotState();
        for (uint256 i; i < pointers.length; ++i) {
            IRecordRegistry.Pointer memory p = pointers[i];
            _add(provider, patient, p.category, T0, p.contentHash, p.cid, p.keysCid);
        }
        (bytes32 singleHead, uint64 singleCount) = records.logOf(patient);
        vm.revertToState(snapshot);

        (bytes32 previous,) = records.logOf(patient);
        for (uint256 i; i < pointers.length; ++i) {
            IRecordRegistry.Pointer memory p = pointers[i];
            uint64 index = uint64(1 + i);
            uint64 seq = uint64(1 + i);
            previous = _expectedHash(
                previous, patient, index, provider, seq, p.category, T0, p.contentHash, p.cid, p.keysCid
            );
            vm.expectEmit(true, true, true, true, address(records));
            emit IRecordRegistry.RecordAdded(
                patient, index, provider, seq, previous, p.category, T0, p.contentHash, p.cid, p.keysCid
            );
        }
        vm.prank(provider);
        bytes32 head = records.addRecords(patient, 1, pointers);

        assertEq(head, singleHead, "batch head equals single-add head");
        assertEq(head, previous, "returned head");
        _assertLog(patient, singleHead, singleCount);
        assertEq(_seqOf(patient, provider), 5);
    }

    function test_addRecords_ThenSingleAddContinuesTheChain() public {
        vm.prank(patient);
        bytes32 head = records.addRecords(patient, 0, _pointers(3, 1));
        bytes32 next = _add(provider, patient, NOTES, T0, CONTENT_HASH, CID, KEYS_CID);
        assertEq(next, _expectedHash(head, patient, 3, provider, 0, NOTES, T0, CONTENT_HASH, CID, KEYS_CID));
        assertEq(_seqOf(patient, patient), 3);
    }

    function test_addRecords_EmergencyAskedOnce() public {
        emergency.setScopes(patient, doctor, ALL);
        vm.prank(doctor);
        records.addRecords(patient, 0, _pointers(4, 2));
        assertEq(_seqOf(patient, doctor), 4);
    }

    function test_RevertWhen_BatchEmpty() public {
        vm.expectRevert(abi.encodeWithSelector(IRecordRegistry.RecordRegistryEmptyBatch.selector));
        vm.prank(provider);
        records.addRecords(patient, 0, new IRecordRegistry.Pointer[](0));
    }

    function test_RevertWhen_BatchAuthorUnauthorized() public {
        vm.expectRevert(_unauthorized(stranger, patient));
        vm.prank(stranger);
        records.addRecords(patient, 0, _pointers(2, 0));
    }

    function test_RevertWhen_BatchPatientUnregistered() public {
        vm.expectRevert(abi.encodeWithSelector(IRecordRegistry.RecordRegistryUnregisteredPatient.selector, stranger));
        vm.prank(stranger);
        records.addRecords(stranger, 0, _pointers(2, 0));
        vm.expectRevert(abi.encodeWithSelector(IRecordRegistry.RecordRegistryUnregisteredPatient.selector, stranger));
        vm.prank(provider);
        records.addRecords(stranger, 0, _pointers(2, 0));
    }

    function test_RevertWhen_BatchHoldsAnInvalidPointer() public {
        IRecordRegistry.Pointer[] memory pointers = _pointers(3, 0);
        pointers[2].category = 6;
        vm.expectRevert(abi.encodeWithSelector(IRecordRegistry.RecordRegistryUnknownCategory.selector, 6));
        vm.prank(provider);
        records.addRecords(patient, 0, pointers);

        pointers = _pointers(3, 0);
        pointers[1].contentHash = bytes32(0);
        vm.expectRevert(abi.encodeWithSelector(IRecordRegistry.RecordRegistryEmptyPointer.selector));
        vm.prank(provider);
        records.addRecords(patient, 0, pointers);
        _assertLog(patient, bytes32(0), 0);
        assertEq(_seqOf(patient, provider), 0);
    }

    function testFuzz_addRecords_CountAndHead(uint8 size, uint256 salt) public {
        uint256 n = bound(size, 1, 12);
        IRecordRegistry.Pointer[] memory pointers = _pointers(n, salt);
        bytes32 expected;
        for (uint256 i; i < n; ++i) {
            IRecordRegistry.Pointer memory p = pointers[i];
            expected = _expectedHash(
                expected, patient, uint64(i), provider, uint64(i), p.category, T0, p.contentHash, p.cid, p.keysCid
            );
        }
        vm.prank(provider);
        assertEq(records.addRecords(patient, 0, pointers), expected);
        _assertLog(patient, expected, uint64(n));
    }

    // ---------------------------------------------------------------- setWriter / removeWriter

    function test_setWriter_SetsAndReplacesCategories() public {
        vm.expectEmit(true, true, true, true, address(records));
        emit IRecordRegistry.WriterSet(patient, doctor, 0x03);
        _setWriter(patient, doctor, 0x03);
        (uint8 categories, uint64 seq) = records.writerOf(patient, doctor);
        assertEq(categories, 0x03);
        assertEq(seq, 0);
        _setWriter(patient, doctor, 0x20);
        (categories,) = records.writerOf(patient, doctor);
        assertEq(categories, 0x20);
    }

    function test_RevertWhen_SetWriterInvalid() public {
        vm.startPrank(patient);
        vm.expectRevert(abi.encodeWithSelector(IRecordRegistry.RecordRegistryInvalidCategories.selector, 0));
        records.setWriter(doctor, 0);
        vm.expectRevert(abi.encodeWithSelector(IRecordRegistry.RecordRegistryInvalidCategories.selector, 0x41));
        records.setWriter(doctor, 0x41);
        vm.expectRevert(abi.encodeWithSelector(IRecordRegistry.RecordRegistrySelfWriter.selector, patient));
        records.setWriter(patient, ALL);
        vm.expectRevert(abi.encodeWithSelector(IRecordRegistry.RecordRegistryNotAProvider.selector, stranger));
        records.setWriter(stranger, ALL);
        vm.stopPrank();
        vm.expectRevert(abi.encodeWithSelector(IRecordRegistry.RecordRegistryUnregisteredPatient.selector, stranger));
        vm.prank(stranger);
        records.setWriter(provider, ALL);
    }

    function test_RevertWhen_RemoveWriterNotAWriter() public {
        vm.expectRevert(abi.encodeWithSelector(IRecordRegistry.RecordRegistryNotAWriter.selector, patient, doctor));
        vm.prank(patient);
        records.removeWriter(doctor);
    }

    function test_setWriter_OnlyTheCallersOwnLog() public {
        // A provider on the care team cannot add another writer: setWriter always names the caller's log.
        vm.prank(provider);
        vm.expectRevert(abi.encodeWithSelector(IRecordRegistry.RecordRegistryUnregisteredPatient.selector, provider));
        records.setWriter(doctor, ALL);
        _assertAddRefused(doctor, patient, LABORATORY, _unauthorized(doctor, patient));
    }

    // ---------------------------------------------------------------- flagRecord

    function test_flagRecord_SetsAndClearsFlags() public {
        _addLab(provider, patient);
        _addLab(provider, patient);
        vm.expectEmit(true, true, true, true, address(records));
        emit IRecordRegistry.RecordFlagged(patient, 1, 1);
        vm.prank(patient);
        records.flagRecord(1, 1);
        assertEq(records.flagsOf(patient, 1), 1);
        assertEq(records.flagsOf(patient, 0), 0);
        vm.prank(patient);
        records.flagRecord(1, 3);
        assertEq(records.flagsOf(patient, 1), 3);
        vm.prank(patient);
        records.flagRecord(1, 2);
        assertEq(records.flagsOf(patient, 1), 2);
        vm.prank(patient);
        records.flagRecord(1, 0);
        assertEq(records.flagsOf(patient, 1), 0);
    }

    function test_RevertWhen_FlagRecordInvalid() public {
        _addLab(provider, patient);
        vm.startPrank(patient);
        vm.expectRevert(abi.encodeWithSelector(IRecordRegistry.RecordRegistryInvalidFlags.selector, 4));
        records.flagRecord(0, 4);
        vm.expectRevert(abi.encodeWithSelector(IRecordRegistry.RecordRegistryUnknownRecord.selector, patient, 1, 1));
        records.flagRecord(1, 1);
        vm.stopPrank();
        // Only the patient flags its own records: the author's call names its own (empty) log.
        vm.expectRevert(abi.encodeWithSelector(IRecordRegistry.RecordRegistryUnknownRecord.selector, provider, 0, 0));
        vm.prank(provider);
        records.flagRecord(0, 0);
    }

    function testFuzz_flagRecord_FlagsAreIndependentPerRecord(uint8 a, uint8 b, uint8 fa, uint8 fb) public {
        vm.prank(patient);
        records.addRecords(patient, 0, _pointers(12, 0));
        vm.prank(patient);
        records.addRecords(patient, 12, _pointers(12, 1));
        vm.prank(patient);
        records.addRecords(patient, 24, _pointers(12, 2));
        uint64 ia = uint64(bound(a, 0, 35));
        uint64 ib = uint64(bound(b, 0, 35));
        uint8 flagA = uint8(bound(fa, 0, 3));
        uint8 flagB = uint8(bound(fb, 0, 3));
        vm.startPrank(patient);
        records.flagRecord(ia, flagA);
        records.flagRecord(ib, flagB);
        vm.stopPrank();
        assertEq(records.flagsOf(patient, ib), flagB);
        if (ia != ib) assertEq(records.flagsOf(patient, ia), flagA);
        for (uint64 i; i < 36; ++i) {
            if (i != ia && i != ib) assertEq(records.flagsOf(patient, i), 0);
        }
    }

    function test_flagRecord_PacksAcrossWords() public {
        // Record 127 is the last of word 0, 128 the first of word 1.
        for (uint256 i; i < 11; ++i) {
            vm.prank(patient);
            records.addRecords(patient, uint64(i * 12), _pointers(12, i));
        }
        vm.startPrank(patient);
        records.flagRecord(127, 2);
        records.flagRecord(128, 1);
        vm.stopPrank();
        assertEq(records.flagsOf(patient, 127), 2);
        assertEq(records.flagsOf(patient, 128), 1);
        assertEq(records.flagsOf(patient, 126), 0);
        assertEq(records.flagsOf(patient, 129), 0);
    }
}
