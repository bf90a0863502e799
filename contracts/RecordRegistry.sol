// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IParticipantRegistry} from "./interfaces/IParticipantRegistry.sol";
import {IRecordRegistry} from "./interfaces/IRecordRegistry.sol";
import {Categories} from "./libraries/Categories.sol";

/// @title RecordRegistry
/// @notice Append-only, hash-chained record pointers; see {IRecordRegistry}.
contract RecordRegistry is IRecordRegistry {
    /// Head hash and length of one patient's log.
    struct PatientLog {
        bytes32 head;
        uint64 count;
    }

    /// The number of record categories, {Categories-COUNT}.
    uint8 public constant CATEGORY_COUNT = Categories.COUNT;

    IParticipantRegistry public immutable participants;

    mapping(address patient => PatientLog) private _logs;

    /// The checks `addRecord` and `addRecords` make first: the author is the patient or an
    /// accredited provider, and the patient is registered. A modifier rather than a private
    /// function: the compiler copies it into each function, where a shared function would cost
    /// a call (measured: 40 to 130 gas more per `addRecord`).
    modifier onlyAuthorFor(address patient) {
        if (msg.sender != patient && !participants.isProvider(msg.sender)) {
            revert RecordRegistryUnauthorizedAuthor(msg.sender, patient);
        }
        if (!participants.isRegistered(patient)) revert RecordRegistryUnregisteredPatient(patient);
        _;
    }

    constructor(IParticipantRegistry participants_) {
        participants = participants_;
    }

    /// @inheritdoc IRecordRegistry
    function addRecord(
        address patient,
        uint64 index,
        bytes calldata cid,
        bytes32 contentHash,
        uint8 category,
        bytes calldata keysCid
    ) external onlyAuthorFor(patient) returns (bytes32 recordHash) {
        if (!Categories.isValid(category)) revert RecordRegistryUnknownCategory(category);
        if (cid.length == 0 || keysCid.length == 0 || contentHash == bytes32(0)) {
            revert RecordRegistryEmptyPointer();
        }
        PatientLog storage log = _logs[patient];
        bytes32 previousHash = log.head;
        uint64 count = log.count;
        if (index != count) revert RecordRegistryStaleIndex(patient, count, index);

        recordHash = _hashRecord(previousHash, patient, index, category, contentHash, cid, keysCid);
        log.head = recordHash;
        // A patient's log cannot reach 2^64 records.
        unchecked {
            log.count = count + 1;
        }
        emit RecordAdded(
            patient,
            index,
            msg.sender,
            recordHash,
            category,
            uint64(block.timestamp),
            contentHash,
            cid,
            keysCid
        );
    }

    /// @inheritdoc IRecordRegistry
    function addRecords(address patient, uint64 firstIndex, Pointer[] calldata pointers)
        external
        onlyAuthorFor(patient)
        returns (bytes32 head)
    {
        uint256 length = pointers.length;
        if (length == 0) revert RecordRegistryEmptyBatch();
        PatientLog storage log = _logs[patient];
        head = log.head;
        uint64 count = log.count;
        if (firstIndex != count) revert RecordRegistryStaleIndex(patient, count, firstIndex);

        for (uint256 i = 0; i < length; ++i) {
            Pointer calldata pointer = pointers[i];
            uint8 category = pointer.category;
            if (!Categories.isValid(category)) revert RecordRegistryUnknownCategory(category);
            if (pointer.cid.length == 0 || pointer.keysCid.length == 0 || pointer.contentHash == bytes32(0)) {
                revert RecordRegistryEmptyPointer();
            }
            head = _hashRecord(head, patient, count, category, pointer.contentHash, pointer.cid, pointer.keysCid);
            emit RecordAdded(
                patient,
                count,
                msg.sender,
                head,
                category,
                uint64(block.timestamp),
                pointer.contentHash,
                pointer.cid,
                pointer.keysCid
            );
            // A patient's log cannot reach 2^64 records.
            unchecked {
                ++count;
            }
        }
        log.head = head;
        log.count = count;
    }

    /// @inheritdoc IRecordRegistry
    function logOf(address patient) external view returns (bytes32 head, uint64 count) {
        PatientLog storage log = _logs[patient];
        return (log.head, log.count);
    }

    /// The record hash documented on {IRecordRegistry-RecordAdded}; the author is the caller
    /// and the timestamp the block's.
    function _hashRecord(
        bytes32 previousHash,
        address patient,
        uint64 index,
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
                category,
                uint64(block.timestamp),
                contentHash,
                keccak256(cid),
                keccak256(keysCid)
            )
        );
    }
}
