// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IEmergencyAccess} from "./interfaces/IEmergencyAccess.sol";
import {IParticipantRegistry} from "./interfaces/IParticipantRegistry.sol";
import {IRecordRegistry} from "./interfaces/IRecordRegistry.sol";
import {Categories} from "./libraries/Categories.sol";
import {Cids} from "./libraries/Cids.sol";

/// @title RecordRegistry
/// @notice Append-only, hash-chained record pointers, written under the patient's consent; see
/// {IRecordRegistry}.
contract RecordRegistry is IRecordRegistry {
    /// Head hash and length of one patient's log.
    struct PatientLog {
        bytes32 head;
        uint64 count;
    }

    /// One author of one patient's log, in one storage word, so a write reads and writes a
    /// single slot for it: bits 0..7 the categories the patient allows it (0 for the patient
    /// itself and for a provider off the care team), bits 8..71 its sequence number (how many
    /// records it has added to this log), never reset.
    struct Writer {
        uint8 categories;
        uint64 seq;
    }

    /// The number of record categories, {Categories-COUNT}.
    uint8 public constant CATEGORY_COUNT = Categories.COUNT;
    /// Record flags (`flagRecord`): the patient disputes the record's content.
    uint8 public constant DISPUTED = 1;
    /// Record flags: the patient asks readers to hide the record by default.
    uint8 public constant HIDDEN = 2;

    IParticipantRegistry public immutable participants;
    /// Asked whether a provider that is not on the care team holds a live emergency access.
    IEmergencyAccess public immutable consent;

    mapping(address patient => PatientLog) private _logs;
    mapping(address patient => mapping(address author => Writer)) private _writers;
    /// Two flag bits per record, 128 records per word: record i at bits 2*(i % 128) of word i / 128.
    mapping(address patient => mapping(uint256 word => uint256 bits)) private _flags;

    constructor(IParticipantRegistry participants_, IEmergencyAccess consent_) {
        participants = participants_;
        consent = consent_;
    }

    /// @inheritdoc IRecordRegistry
    function addRecord(
        address patient,
        uint64 seq,
        bytes calldata cid,
        bytes32 contentHash,
        uint8 category,
        bytes calldata keysCid
    ) external returns (bytes32 recordHash) {
        Cids.check(cid);
        Cids.check(keysCid);
        if (contentHash == bytes32(0)) revert RecordRegistryEmptyPointer();
        Writer storage writer = _writers[patient][msg.sender];
        uint8 allowed = writer.categories;
        uint64 next = writer.seq;
        if (seq != next) revert RecordRegistryStaleSeq(msg.sender, patient, next, seq);
        if (!Categories.isValid(category)) revert RecordRegistryUnknownCategory(category);
        if (msg.sender == patient) {
            if (!participants.isRegistered(patient)) revert RecordRegistryUnregisteredPatient(patient);
        } else {
            if (!Categories.contains(allowed, category)) {
                allowed |= _emergencyScopes(patient, allowed);
                if (!Categories.contains(allowed, category)) _refuse(patient, allowed, category);
            }
            if (!participants.isProvider(msg.sender)) revert RecordRegistryNotAProvider(msg.sender);
        }

        PatientLog storage log = _logs[patient];
        uint64 index = log.count;
        recordHash = _hashRecord(log.head, patient, index, seq, category, contentHash, cid, keysCid);
        log.head = recordHash;
        // Neither a log nor one author's part of it can reach 2^64 records.
        unchecked {
            log.count = index + 1;
            writer.seq = seq + 1;
        }
        emit RecordAdded(
            patient,
            index,
            msg.sender,
            seq,
            recordHash,
            category,
            uint64(block.timestamp),
            contentHash,
            cid,
            keysCid
        );
    }

    /// @inheritdoc IRecordRegistry
    function addRecords(address patient, uint64 firstSeq, Pointer[] calldata pointers)
        external
        returns (bytes32 head)
    {
        uint256 length = pointers.length;
        if (length == 0) revert RecordRegistryEmptyBatch();
        Writer storage writer = _writers[patient][msg.sender];
        uint8 allowed = writer.categories;
        uint64 seq = writer.seq;
        if (firstSeq != seq) revert RecordRegistryStaleSeq(msg.sender, patient, seq, firstSeq);
        bool isPatient = msg.sender == patient;
        if (isPatient && !participants.isRegistered(patient)) revert RecordRegistryUnregisteredPatient(patient);
        // Whether the consent contract was asked what an emergency adds (at most once per batch).
        bool asked = false;

        PatientLog storage log = _logs[patient];
        head = log.head;
        uint64 index = log.count;
        for (uint256 i = 0; i < length; ++i) {
            Pointer calldata pointer = pointers[i];
            uint8 category = pointer.category;
            if (!Categories.isValid(category)) revert RecordRegistryUnknownCategory(category);
            Cids.check(pointer.cid);
            Cids.check(pointer.keysCid);
            if (pointer.contentHash == bytes32(0)) revert RecordRegistryEmptyPointer();
            if (!isPatient && !Categories.contains(allowed, category)) {
                if (!asked) {
                    allowed |= _emergencyScopes(patient, allowed);
                    asked = true;
                }
                if (!Categories.contains(allowed, category)) _refuse(patient, allowed, category);
            }
            head = _hashRecord(head, patient, index, seq, category, pointer.contentHash, pointer.cid, pointer.keysCid);
            emit RecordAdded(
                patient,
                index,
                msg.sender,
                seq,
                head,
                category,
                uint64(block.timestamp),
                pointer.contentHash,
                pointer.cid,
                pointer.keysCid
            );
            // Neither a log nor one author's part of it can reach 2^64 records.
            unchecked {
                ++index;
                ++seq;
            }
        }
        // As in `addRecord`, accreditation is checked once the author's right to each record is.
        if (!isPatient && !participants.isProvider(msg.sender)) revert RecordRegistryNotAProvider(msg.sender);
        log.head = head;
        log.count = index;
        writer.seq = seq;
    }

    /// @inheritdoc IRecordRegistry
    function setWriter(address writer, uint8 categories) external {
        if (!Categories.isValidScope(categories)) revert RecordRegistryInvalidCategories(categories);
        if (writer == msg.sender) revert RecordRegistrySelfWriter(msg.sender);
        if (!participants.isRegistered(msg.sender)) revert RecordRegistryUnregisteredPatient(msg.sender);
        if (!participants.isProvider(writer)) revert RecordRegistryNotAProvider(writer);
        _writers[msg.sender][writer].categories = categories;
        emit WriterSet(msg.sender, writer, categories);
    }

    /// @inheritdoc IRecordRegistry
    function removeWriter(address writer) external {
        Writer storage slot = _writers[msg.sender][writer];
        if (slot.categories == 0) revert RecordRegistryNotAWriter(msg.sender, writer);
        slot.categories = 0;
        emit WriterRemoved(msg.sender, writer);
    }

    /// @inheritdoc IRecordRegistry
    function flagRecord(uint64 index, uint8 flags) external {
        if (flags & ~(DISPUTED | HIDDEN) != 0) revert RecordRegistryInvalidFlags(flags);
        uint64 count = _logs[msg.sender].count;
        if (index >= count) revert RecordRegistryUnknownRecord(msg.sender, index, count);
        uint256 shift = (uint256(index) & 127) * 2;
        mapping(uint256 => uint256) storage words = _flags[msg.sender];
        uint256 word = index >> 7;
        words[word] = (words[word] & ~(uint256(3) << shift)) | (uint256(flags) << shift);
        emit RecordFlagged(msg.sender, index, flags);
    }

    /// @inheritdoc IRecordRegistry
    function logOf(address patient) external view returns (bytes32 head, uint64 count) {
        PatientLog storage log = _logs[patient];
        return (log.head, log.count);
    }

    /// @inheritdoc IRecordRegistry
    function writerOf(address patient, address writer) external view returns (uint8 categories, uint64 nextSeq) {
        Writer storage slot = _writers[patient][writer];
        return (slot.categories, slot.seq);
    }

    /// @inheritdoc IRecordRegistry
    function flagsOf(address patient, uint64 index) external view returns (uint8 flags) {
        return uint8((_flags[patient][index >> 7] >> ((uint256(index) & 127) * 2)) & 3);
    }

    /// The categories of the caller's live emergency access to `patient` (zero if none), asked
    /// only when its care-team categories `allowed` do not cover a record.
    function _emergencyScopes(address patient, uint8 allowed) private view returns (uint8 scopes) {
        // A care-team writer's patient is registered (setWriter requires it); anyone else's may not be.
        // slither-disable-next-line calls-loop -- addRecords asks at most once per batch (its `asked` flag)
        if (allowed == 0 && !participants.isRegistered(patient)) revert RecordRegistryUnregisteredPatient(patient);
        // A consent contract that cannot answer grants nothing: the write is then refused.
        // slither-disable-next-line calls-loop -- addRecords asks at most once per batch (its `asked` flag)
        try consent.emergencyScopes(patient, msg.sender) returns (uint8 emergency) {
            scopes = emergency;
        } catch {
            scopes = 0;
        }
    }

    /// Refuses a record of `category`, which the caller's categories `allowed` (care team and
    /// emergency together) do not cover: it may not write at all, or not this category.
    function _refuse(address patient, uint8 allowed, uint8 category) private view {
        if (allowed == 0) revert RecordRegistryUnauthorizedAuthor(msg.sender, patient);
        revert RecordRegistryCategoryNotAllowed(msg.sender, patient, category);
    }

    /// The record hash documented on {IRecordRegistry-RecordAdded}; the author is the caller
    /// and the timestamp the block's.
    function _hashRecord(
        bytes32 previousHash,
        address patient,
        uint64 index,
        uint64 seq,
        uint8 category,
        bytes32 contentHash,
        bytes calldata cid,
        bytes calldata keysCid
    ) private view returns (bytes32) {
        return keccak256(
            abi.encode(
                previousHash,
                patient,
                index,
                msg.sender,
                seq,
                category,
                uint64(block.timestamp),
                contentHash,
                keccak256(cid),
                keccak256(keysCid)
            )
        );
    }
}
