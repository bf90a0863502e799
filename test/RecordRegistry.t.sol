// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ParticipantRegistry} from "../contracts/ParticipantRegistry.sol";
import {RecordRegistry} from "../contracts/RecordRegistry.sol";
import {IParticipantRegistry} from "../contracts/interfaces/IParticipantRegistry.sol";
import {IRecordRegistry} from "../contracts/interfaces/IRecordRegistry.sol";
import {Base} from "./utils/Base.sol";

contract RecordRegistryTest is Base {
    ParticipantRegistry internal participants;
    RecordRegistry internal records;

    function setUp() public {
        vm.warp(T0);
        participants = _deployParticipants();
        records = new RecordRegistry(IParticipantRegistry(address(participants)));

        vm.prank(patient);
        participants.register(hex"0120aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
        vm.prank(doctor);
        participants.register(hex"0120dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd");
        _accreditProvider(participants, provider);
    }

    // ---------------------------------------------------------------- helpers

    /// The documented preimage of {IRecordRegistry-RecordAdded}'s recordHash, rebuilt independently:
    /// it repeats RecordRegistry._hashRecord on purpose (a test oracle), so keep the copy.
    function _expectedHash(
        bytes32 previousHash,
        address patient_,
        uint64 index,
        address author,
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
                category,
                timestamp,
                contentHash,
                keccak256(cid),
                keccak256(keysCid)
            )
        );
    }

    function _assertLog(address patient_, bytes32 head, uint64 count) internal view {
        (bytes32 actualHead, uint64 actualCount) = records.logOf(patient_);
        assertEq(actualHead, head, "head");
        assertEq(actualCount, count, "count");
    }

    /// Adds a record on top of the log's current head and checks its event, return value and
    /// the new log state.
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
        return _addAt(previousHash, index, author, patient_, category, timestamp, contentHash, cid, keysCid);
    }

    /// Adds a record at `index` expecting it to chain on `previousHash` (given, not read back
    /// from the contract); checks its event, return value and the new log state.
    function _addAt(
        bytes32 previousHash,
        uint64 index,
        address author,
        address patient_,
        uint8 category,
        uint64 timestamp,
        bytes32 contentHash,
        bytes memory cid,
        bytes memory keysCid
    ) internal returns (bytes32 recordHash) {
        bytes32 expected =
            _expectedHash(previousHash, patient_, index, author, category, timestamp, contentHash, cid, keysCid);

        vm.expectEmit(true, true, true, true, address(records));
        emit IRecordRegistry.RecordAdded(
            patient_, index, author, expected, category, timestamp, contentHash, cid, keysCid
        );
        vm.prank(author);
        recordHash = records.addRecord(patient_, index, cid, contentHash, category, keysCid);

        assertEq(recordHash, expected, "returned recordHash");
        _assertLog(patient_, expected, index + 1);
    }

    /// `author` adds a laboratory record for `patient_` at `index` and is refused with `err`.
    function _assertAddRefused(address author, address patient_, uint64 index, bytes memory err) internal {
        vm.expectRevert(err);
        vm.prank(author);
        records.addRecord(patient_, index, CID, CONTENT_HASH, LABORATORY, KEYS_CID);
    }

    function _assertUnauthorizedAuthor(address author, address patient_, uint64 index) internal {
        _assertAddRefused(
            author,
            patient_,
            index,
            abi.encodeWithSelector(IRecordRegistry.RecordRegistryUnauthorizedAuthor.selector, author, patient_)
        );
    }

    function _assertUnregisteredPatient(address author, address patient_) internal {
        bytes memory err = abi.encodeWithSelector(IRecordRegistry.RecordRegistryUnregisteredPatient.selector, patient_);
        _assertAddRefused(author, patient_, 0, err);
    }

    // ---------------------------------------------------------------- constructor / views

    function test_constructor_SetsParticipants() public view {
        assertEq(address(records.participants()), address(participants));
        assertEq(records.CATEGORY_COUNT(), 6);
    }

    function test_logOf_EmptyBeforeFirstRecord() public view {
        _assertLog(patient, bytes32(0), 0);
        _assertLog(stranger, bytes32(0), 0);
    }

    // ---------------------------------------------------------------- addRecord: authors

    function test_addRecord_ProviderAddsForRegisteredPatient() public {
        _addAt(bytes32(0), 0, provider, patient, LABORATORY, T0, CONTENT_HASH, CID, KEYS_CID);
    }

    function test_addRecord_PatientAddsOwnRecord() public {
        assertFalse(participants.isProvider(patient));
        _addAt(bytes32(0), 0, patient, patient, NOTES, T0, CONTENT_HASH, CID, KEYS_CID);
    }

    function test_addRecord_ProviderNeedNotBeRegistered() public {
        assertFalse(participants.isRegistered(provider));
        _add(provider, patient, IMAGING, T0, CONTENT_HASH, CID, KEYS_CID);
    }

    function test_addRecord_AuthorIsBoundIntoHash() public {
        // The same record by a different author yields a different head.
        uint256 snapshot = vm.snapshotState();
        bytes32 byProvider = _add(provider, patient, LABORATORY, T0, CONTENT_HASH, CID, KEYS_CID);
        vm.revertToState(snapshot);
        bytes32 byPatient = _add(patient, patient, LABORATORY, T0, CONTENT_HASH, CID, KEYS_CID);
        assertNotEq(byProvider, byPatient);
    }

    function test_RevertWhen_AuthorIsStranger() public {
        assertFalse(participants.isProvider(stranger));
        _assertUnauthorizedAuthor(stranger, patient, 0);
        _assertLog(patient, bytes32(0), 0);
    }

    function test_RevertWhen_PatientWritesAnotherPatientsLog() public {
        // Being a registered patient does not let one write into someone else's log.
        _assertUnauthorizedAuthor(patient, doctor, 0);
        _assertLog(doctor, bytes32(0), 0);
    }

    function test_RevertWhen_ResearcherAuthors() public {
        _accreditResearcher(participants, stranger);
        assertTrue(participants.isResearcher(stranger));

        _assertUnauthorizedAuthor(stranger, patient, 0);
        _assertLog(patient, bytes32(0), 0);
    }

    function test_RevertWhen_ProviderWithdrawn() public {
        bytes32 head = _add(provider, patient, LABORATORY, T0, CONTENT_HASH, CID, KEYS_CID);

        vm.startPrank(admin);
        participants.revokeRole(participants.PROVIDER_ROLE(), provider);
        vm.stopPrank();
        assertFalse(participants.isProvider(provider));

        _assertUnauthorizedAuthor(provider, patient, 1);
        _assertLog(patient, head, 1);
    }

    // ---------------------------------------------------------------- addRecord: patient

    function test_RevertWhen_PatientUnregistered() public {
        assertFalse(participants.isRegistered(stranger));
        _assertUnregisteredPatient(provider, stranger);
        _assertLog(stranger, bytes32(0), 0);
    }

    function test_RevertWhen_UnregisteredPatientAddsOwnRecord() public {
        _assertUnregisteredPatient(stranger, stranger);
        _assertLog(stranger, bytes32(0), 0);
    }

    // ---------------------------------------------------------------- addRecord: index

    function test_RevertWhen_StaleIndex() public {
        bytes32 head = _add(provider, patient, LABORATORY, T0, CONTENT_HASH, CID, KEYS_CID);

        // A second writer encrypted for position 0, but a record already landed there.
        vm.expectRevert(abi.encodeWithSelector(IRecordRegistry.RecordRegistryStaleIndex.selector, patient, 1, 0));
        vm.prank(patient);
        records.addRecord(patient, 0, CID, keccak256("ciphertext 1"), NOTES, KEYS_CID);
        _assertLog(patient, head, 1);
    }

    function test_RevertWhen_IndexAhead() public {
        bytes memory err = abi.encodeWithSelector(IRecordRegistry.RecordRegistryStaleIndex.selector, patient, 0, 1);
        _assertAddRefused(provider, patient, 1, err);
        _assertLog(patient, bytes32(0), 0);
    }

    function testFuzz_RevertWhen_IndexIsNotCount(uint256 existing, uint256 given) public {
        existing = bound(existing, 0, 4);
        for (uint256 i; i < existing; ++i) {
            _add(provider, patient, uint8(i % 6), T0, keccak256(abi.encode(i)), CID, KEYS_CID);
        }
        (bytes32 head,) = records.logOf(patient);
        // Any position other than `existing`: below it (stale) or above it (ahead).
        given = bound(given, 0, type(uint64).max - 1);
        if (given >= existing) given += 1;

        vm.expectRevert(
            abi.encodeWithSelector(
                IRecordRegistry.RecordRegistryStaleIndex.selector, patient, uint64(existing), uint64(given)
            )
        );
        vm.prank(provider);
        records.addRecord(patient, uint64(given), CID, CONTENT_HASH, LABORATORY, KEYS_CID);
        _assertLog(patient, head, uint64(existing));
    }

    // ---------------------------------------------------------------- addRecord: category

    function test_addRecord_AllCategories() public {
        for (uint8 category; category < 6; ++category) {
            _add(provider, patient, category, T0, keccak256(abi.encode(category)), CID, KEYS_CID);
        }
        (, uint64 count) = records.logOf(patient);
        assertEq(count, 6);
    }

    function test_RevertWhen_UnknownCategory() public {
        vm.expectRevert(abi.encodeWithSelector(IRecordRegistry.RecordRegistryUnknownCategory.selector, 6));
        vm.prank(provider);
        records.addRecord(patient, 0, CID, CONTENT_HASH, 6, KEYS_CID);
        _assertLog(patient, bytes32(0), 0);
    }

    function testFuzz_RevertWhen_UnknownCategory(uint256 category) public {
        category = bound(category, 6, type(uint8).max);
        vm.expectRevert(abi.encodeWithSelector(IRecordRegistry.RecordRegistryUnknownCategory.selector, category));
        vm.prank(provider);
        records.addRecord(patient, 0, CID, CONTENT_HASH, uint8(category), KEYS_CID);
        _assertLog(patient, bytes32(0), 0);
    }

    // ---------------------------------------------------------------- addRecord: pointers

    function test_RevertWhen_CidEmpty() public {
        vm.expectRevert(abi.encodeWithSelector(IRecordRegistry.RecordRegistryEmptyPointer.selector));
        vm.prank(provider);
        records.addRecord(patient, 0, "", CONTENT_HASH, LABORATORY, KEYS_CID);
        _assertLog(patient, bytes32(0), 0);
    }

    function test_RevertWhen_KeysCidEmpty() public {
        vm.expectRevert(abi.encodeWithSelector(IRecordRegistry.RecordRegistryEmptyPointer.selector));
        vm.prank(provider);
        records.addRecord(patient, 0, CID, CONTENT_HASH, LABORATORY, "");
        _assertLog(patient, bytes32(0), 0);
    }

    function test_RevertWhen_ContentHashZero() public {
        vm.expectRevert(abi.encodeWithSelector(IRecordRegistry.RecordRegistryEmptyPointer.selector));
        vm.prank(provider);
        records.addRecord(patient, 0, CID, bytes32(0), LABORATORY, KEYS_CID);
        _assertLog(patient, bytes32(0), 0);
    }

    // ---------------------------------------------------------------- hash chain

    function test_addRecord_HashChain() public {
        bytes memory cid1 = hex"0155122011";
        bytes memory keys1 = hex"0155122022";
        bytes32 content1 = keccak256("ciphertext 1");
        bytes memory cid2 = hex"0155122033";
        bytes memory keys2 = hex"0155122044";
        bytes32 content2 = keccak256("ciphertext 2");

        // Each record's event, returned hash and new head, chained by hand on the one before.
        // Record 0: provider, at T0.
        bytes32 h0 = _addAt(bytes32(0), 0, provider, patient, LABORATORY, T0, CONTENT_HASH, CID, KEYS_CID);

        // Record 1: the patient, a day later; chains on h0.
        uint64 t1 = T0 + 1 days;
        vm.warp(t1);
        bytes32 h1 = _addAt(h0, 1, patient, patient, NOTES, t1, content1, cid1, keys1);

        // Record 2: provider again, a week later; chains on h1.
        uint64 t2 = T0 + 8 days;
        vm.warp(t2);
        bytes32 h2 = _addAt(h1, 2, provider, patient, IMAGING, t2, content2, cid2, keys2);

        // Every link is distinct, and dropping a record breaks the chain.
        assertNotEq(h0, h1);
        assertNotEq(h1, h2);
        assertNotEq(_expectedHash(h0, patient, 1, provider, IMAGING, t2, content2, cid2, keys2), h2);
    }

    function test_addRecord_LogsArePerPatient() public {
        bytes32 patientHead = _add(provider, patient, LABORATORY, T0, CONTENT_HASH, CID, KEYS_CID);

        // The doctor's (separate) log starts at index 0 with a zero previous hash.
        bytes32 doctorHead = _add(provider, doctor, LABORATORY, T0, CONTENT_HASH, CID, KEYS_CID);
        assertEq(
            doctorHead,
            _expectedHash(bytes32(0), doctor, 0, provider, LABORATORY, T0, CONTENT_HASH, CID, KEYS_CID)
        );
        assertNotEq(doctorHead, patientHead);
        _assertLog(patient, patientHead, 1);
        _assertLog(doctor, doctorHead, 1);
    }

    function test_addRecord_CountIncrements() public {
        for (uint64 i; i < 5; ++i) {
            vm.warp(T0 + i);
            _add(
                i % 2 == 0 ? provider : patient,
                patient,
                uint8(i % 6),
                T0 + i,
                keccak256(abi.encode("content", i)),
                abi.encodePacked(CID, i),
                abi.encodePacked(KEYS_CID, i)
            );
            (, uint64 count) = records.logOf(patient);
            assertEq(count, i + 1);
        }
    }

    function testFuzz_addRecord_HashMatchesPreimage(
        bytes calldata cidTail,
        bytes calldata keysCidTail,
        uint256 contentHash,
        uint256 category,
        uint256 timestamp,
        bool byPatient
    ) public {
        // Non-empty pointers and a non-zero content hash, without discarding inputs.
        bytes memory cid = abi.encodePacked(bytes1(0x01), cidTail);
        bytes memory keysCid = abi.encodePacked(bytes1(0x01), keysCidTail);
        bytes32 content = bytes32(bound(contentHash, 1, type(uint256).max));
        uint8 cat = uint8(bound(category, 0, 5));
        uint64 ts = uint64(bound(timestamp, T0, type(uint64).max));
        address author = byPatient ? patient : provider;

        // A first record, so the fuzzed one chains on a non-zero head.
        bytes32 first = _add(provider, patient, LABORATORY, T0, CONTENT_HASH, CID, KEYS_CID);

        vm.warp(ts);
        bytes32 second = _add(author, patient, cat, ts, content, cid, keysCid);
        assertEq(second, _expectedHash(first, patient, 1, author, cat, ts, content, cid, keysCid));
    }

    // ---------------------------------------------------------------- addRecords (batches)

    function _pointers(uint256 n, uint256 salt) internal pure returns (IRecordRegistry.Pointer[] memory pointers) {
        pointers = new IRecordRegistry.Pointer[](n);
        for (uint256 i; i < n; ++i) {
            pointers[i] = IRecordRegistry.Pointer({
                cid: abi.encodePacked(CID, salt, i),
                contentHash: keccak256(abi.encode("batch content", salt, i)),
                category: uint8((i + salt % 6) % 6),
                keysCid: abi.encodePacked(KEYS_CID, salt)
            });
        }
    }

    function test_addRecords_SameChainAsSingleAdds() public {
        _add(provider, patient, LABORATORY, T0, CONTENT_HASH, CID, KEYS_CID);
        IRecordRegistry.Pointer[] memory pointers = _pointers(4, 7);

        // One by one, in the same block.
        uint256 snapshot = vm.snapshotState();
        for (uint256 i; i < pointers.length; ++i) {
            IRecordRegistry.Pointer memory p = pointers[i];
            _add(provider, patient, p.category, T0, p.contentHash, p.cid, p.keysCid);
        }
        (bytes32 singleHead, uint64 singleCount) = records.logOf(patient);
        vm.revertToState(snapshot);

        // As one batch: the same events, in order, and the same head.
        (bytes32 previous,) = records.logOf(patient);
        for (uint256 i; i < pointers.length; ++i) {
            IRecordRegistry.Pointer memory p = pointers[i];
            uint64 index = uint64(1 + i);
            previous =
                _expectedHash(previous, patient, index, provider, p.category, T0, p.contentHash, p.cid, p.keysCid);
            vm.expectEmit(true, true, true, true, address(records));
            emit IRecordRegistry.RecordAdded(
                patient, index, provider, previous, p.category, T0, p.contentHash, p.cid, p.keysCid
            );
        }
        vm.prank(provider);
        bytes32 head = records.addRecords(patient, 1, pointers);

        assertEq(head, singleHead, "batch head equals single-add head");
        assertEq(head, previous, "returned head");
        _assertLog(patient, singleHead, singleCount);
        assertEq(singleCount, 5);
    }

    function test_addRecords_ThenSingleAddContinuesTheChain() public {
        vm.prank(patient);
        bytes32 head = records.addRecords(patient, 0, _pointers(3, 1));
        bytes32 next = _add(provider, patient, NOTES, T0, CONTENT_HASH, CID, KEYS_CID);
        assertEq(next, _expectedHash(head, patient, 3, provider, NOTES, T0, CONTENT_HASH, CID, KEYS_CID));
    }

    function test_RevertWhen_BatchEmpty() public {
        vm.expectRevert(abi.encodeWithSelector(IRecordRegistry.RecordRegistryEmptyBatch.selector));
        vm.prank(provider);
        records.addRecords(patient, 0, new IRecordRegistry.Pointer[](0));
        _assertLog(patient, bytes32(0), 0);
    }

    function test_RevertWhen_BatchIndexStale() public {
        bytes32 head = _add(provider, patient, LABORATORY, T0, CONTENT_HASH, CID, KEYS_CID);
        IRecordRegistry.Pointer[] memory pointers = _pointers(2, 3);

        vm.expectRevert(abi.encodeWithSelector(IRecordRegistry.RecordRegistryStaleIndex.selector, patient, 1, 0));
        vm.prank(provider);
        records.addRecords(patient, 0, pointers);

        vm.expectRevert(abi.encodeWithSelector(IRecordRegistry.RecordRegistryStaleIndex.selector, patient, 1, 2));
        vm.prank(provider);
        records.addRecords(patient, 2, pointers);
        _assertLog(patient, head, 1);
    }

    function test_RevertWhen_BatchAuthorUnauthorized() public {
        vm.expectRevert(
            abi.encodeWithSelector(IRecordRegistry.RecordRegistryUnauthorizedAuthor.selector, stranger, patient)
        );
        vm.prank(stranger);
        records.addRecords(patient, 0, _pointers(2, 0));
        _assertLog(patient, bytes32(0), 0);
    }

    function test_RevertWhen_BatchPatientUnregistered() public {
        vm.expectRevert(
            abi.encodeWithSelector(IRecordRegistry.RecordRegistryUnregisteredPatient.selector, stranger)
        );
        vm.prank(provider);
        records.addRecords(stranger, 0, _pointers(2, 0));
        _assertLog(stranger, bytes32(0), 0);
    }

    function test_RevertWhen_BatchHoldsAnInvalidPointer() public {
        // All or nothing: one bad pointer anywhere reverts the whole batch.
        IRecordRegistry.Pointer[] memory pointers = _pointers(3, 0);
        pointers[2].category = 6;
        vm.expectRevert(abi.encodeWithSelector(IRecordRegistry.RecordRegistryUnknownCategory.selector, 6));
        vm.prank(provider);
        records.addRecords(patient, 0, pointers);

        pointers = _pointers(3, 0);
        pointers[1].keysCid = "";
        vm.expectRevert(abi.encodeWithSelector(IRecordRegistry.RecordRegistryEmptyPointer.selector));
        vm.prank(provider);
        records.addRecords(patient, 0, pointers);

        pointers = _pointers(3, 0);
        pointers[0].contentHash = bytes32(0);
        vm.expectRevert(abi.encodeWithSelector(IRecordRegistry.RecordRegistryEmptyPointer.selector));
        vm.prank(provider);
        records.addRecords(patient, 0, pointers);
        _assertLog(patient, bytes32(0), 0);
    }

    function testFuzz_addRecords_CountAndHead(uint8 size, uint256 salt) public {
        uint256 n = bound(size, 1, 12);
        IRecordRegistry.Pointer[] memory pointers = _pointers(n, salt);
        bytes32 expected;
        for (uint256 i; i < n; ++i) {
            IRecordRegistry.Pointer memory p = pointers[i];
            expected = _expectedHash(
                expected, patient, uint64(i), provider, p.category, T0, p.contentHash, p.cid, p.keysCid
            );
        }
        vm.prank(provider);
        assertEq(records.addRecords(patient, 0, pointers), expected);
        _assertLog(patient, expected, uint64(n));
    }
}
