// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Record registry
/// @notice An append-only, hash-chained log of encrypted record pointers per patient.
/// @dev Each record's hash commits to the patient's previous record hash, so anyone who rebuilds
/// the log from `RecordAdded` events and compares it with `head` detects a missing, altered or
/// reordered record. The payload and the record keys never touch the chain: `cid` points at the
/// ciphertext in IPFS and `keysCid` at the record key wrapped for each reader.
interface IRecordRegistry {
    /// @notice One record of a batch: the fields `addRecord` takes besides the patient and index.
    /// @param cid Binary CID of the ciphertext in IPFS.
    /// @param contentHash sha256 of the ciphertext bytes.
    /// @param category A record category, below `Categories.COUNT` (see {Categories}).
    /// @param keysCid Binary CID of the key bundle that wraps the record key for its readers
    /// (records of one batch may share a bundle).
    struct Pointer {
        bytes cid;
        bytes32 contentHash;
        uint8 category;
        bytes keysCid;
    }

    /// @notice A record was appended to `patient`'s log at position `index`.
    /// @param patient The patient whose log grew.
    /// @param index The record's position in the log (0 for the first).
    /// @param author The caller: the patient or an accredited provider.
    /// @param recordHash keccak256(abi.encode(previousHash, patient, index, author, category,
    /// timestamp, contentHash, keccak256(cid), keccak256(keysCid))), where previousHash is the
    /// recordHash of the event at `index - 1` (zero for the first); the new head.
    /// @param category The record's category (see {Categories}).
    /// @param timestamp The timestamp of the block that added it.
    /// @param contentHash sha256 of the ciphertext bytes.
    /// @param cid Binary CID of the ciphertext in IPFS.
    /// @param keysCid Binary CID of the key bundle that wraps the record key for its readers.
    event RecordAdded(
        address indexed patient,
        uint64 indexed index,
        address indexed author,
        bytes32 recordHash,
        uint8 category,
        uint64 timestamp,
        bytes32 contentHash,
        bytes cid,
        bytes keysCid
    );

    /// @notice The author is neither the patient nor an accredited provider.
    /// @param author The caller.
    /// @param patient The patient whose log it tried to write.
    error RecordRegistryUnauthorizedAuthor(address author, address patient);
    /// @notice The patient has not registered an encryption key.
    /// @param patient The patient named.
    error RecordRegistryUnregisteredPatient(address patient);
    /// @notice The record was encrypted for position `given`, but the log is at `expected`
    /// (another record landed first); re-encrypt for the new position and resend.
    /// @param patient The patient whose log it is.
    /// @param expected The log's length, the position the next record takes.
    /// @param given The position the call named.
    error RecordRegistryStaleIndex(address patient, uint64 expected, uint64 given);
    /// @notice `category` is not one of the defined record categories (see {Categories}).
    /// @param category The category refused.
    error RecordRegistryUnknownCategory(uint8 category);
    /// @notice A pointer field (CID, key bundle CID or content hash) is empty.
    error RecordRegistryEmptyPointer();
    /// @notice `addRecords` was given no pointers.
    error RecordRegistryEmptyBatch();

    /// @notice Appends a record for `patient` at position `index`. The caller must be the patient
    /// or an accredited provider, and the patient registered.
    /// @param patient The patient whose log the record joins.
    /// @param index The position the ciphertext is bound to; must equal the current count.
    /// @param cid Binary CID of the ciphertext in IPFS.
    /// @param contentHash sha256 of the ciphertext bytes.
    /// @param category A record category, below `Categories.COUNT` (see {Categories}).
    /// @param keysCid Binary CID of the key bundle that wraps the record key for its readers.
    /// @return recordHash The new head of the patient's log.
    function addRecord(
        address patient,
        uint64 index,
        bytes calldata cid,
        bytes32 contentHash,
        uint8 category,
        bytes calldata keysCid
    ) external returns (bytes32 recordHash);

    /// @notice Appends `pointers` for `patient` at positions `firstIndex`, `firstIndex + 1`, ...
    /// in one transaction: the same checks as `addRecord` for each, one `RecordAdded` event
    /// each, in order, and the same hash chain (and head) as adding them one by one in one block.
    /// All or nothing: one invalid pointer reverts the whole batch.
    /// @param patient The patient whose log the records join.
    /// @param firstIndex The position the first ciphertext is bound to; must equal the current count.
    /// @param pointers The records, in order; at least one.
    /// @return head The new head of the patient's log (the last record's hash).
    function addRecords(address patient, uint64 firstIndex, Pointer[] calldata pointers)
        external
        returns (bytes32 head);

    /// @notice The head hash of `patient`'s log (zero before the first record) and its length.
    /// @param patient The patient.
    /// @return head The last record's hash, zero before the first.
    /// @return count The number of records.
    function logOf(address patient) external view returns (bytes32 head, uint64 count);
}
