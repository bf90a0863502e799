// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Record registry
/// @notice An append-only, hash-chained log of encrypted record pointers per patient, written
/// only by the patient, by the providers the patient put on its care team (each for the
/// categories the patient chose), and by a provider inside a live emergency access.
/// @dev Each record's hash commits to the patient's previous record hash, so anyone who rebuilds
/// the log from `RecordAdded` events and compares it with `head` detects a missing, altered or
/// reordered record. The payload and the record keys never touch the chain: `cid` points at the
/// ciphertext in IPFS and `keysCid` at the record key wrapped for each reader; both must be
/// binary sha2-256 CIDv1s, raw or dag-pb (see {Cids}), or the write reverts with `InvalidCid`.
///
/// Positions are assigned on chain, so concurrent writers never race for one. What a ciphertext
/// is bound to is instead (patient, author, seq): `seq` counts the author's own records in the
/// patient's log (0 for its first), known to the author before it writes, stored here, emitted
/// with the record and part of its hash.
interface IRecordRegistry {
    /// @notice One record of a batch: the fields `addRecord` takes besides the patient.
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
    /// @param index The record's position in the log (0 for the first), assigned on chain.
    /// @param author The caller: the patient, a writer the patient allowed, or a provider in an
    /// emergency.
    /// @param seq The author's sequence number in this patient's log: how many records it had
    /// added before this one. The ciphertext and key wraps are bound to (patient, author, seq).
    /// @param recordHash keccak256(abi.encode(previousHash, patient, index, author, seq, category,
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
        uint64 seq,
        bytes32 recordHash,
        uint8 category,
        uint64 timestamp,
        bytes32 contentHash,
        bytes cid,
        bytes keysCid
    );

    /// @notice `patient` allowed `writer` to add records in `categories` (a scope bitmask),
    /// replacing what it allowed before.
    event WriterSet(address indexed patient, address indexed writer, uint8 categories);

    /// @notice `patient` took `writer` off its care team: it may no longer add records (its
    /// sequence number is kept, so a later return never reuses one).
    event WriterRemoved(address indexed patient, address indexed writer);

    /// @notice `patient` set the flags of its record `index` (bit 0 disputed, bit 1 hidden; zero
    /// clears them). The record itself is unchanged: readers show the flags beside it.
    event RecordFlagged(address indexed patient, uint64 indexed index, uint8 flags);

    /// @notice The author may not write `patient`'s log: it is not the patient, not on the
    /// patient's care team and holds no live emergency access.
    /// @param author The caller.
    /// @param patient The patient whose log it tried to write.
    error RecordRegistryUnauthorizedAuthor(address author, address patient);
    /// @notice The author may write `patient`'s log, but not records of `category`.
    error RecordRegistryCategoryNotAllowed(address author, address patient, uint8 category);
    /// @notice `account` is not an accredited provider (a writer must be one, when it is allowed
    /// and every time it writes).
    error RecordRegistryNotAProvider(address account);
    /// @notice The patient has not registered an encryption key.
    /// @param patient The patient named.
    error RecordRegistryUnregisteredPatient(address patient);
    /// @notice `category` is not one of the defined record categories (see {Categories}).
    /// @param category The category refused.
    error RecordRegistryUnknownCategory(uint8 category);
    /// @notice A pointer's content hash is zero. (A CID that is not a sha2-256 CIDv1, raw or
    /// dag-pb, is refused with {Cids-InvalidCid}.)
    error RecordRegistryEmptyPointer();
    /// @notice `addRecords` was given no pointers.
    error RecordRegistryEmptyBatch();
    /// @notice `categories` names no category, or one that is not defined.
    error RecordRegistryInvalidCategories(uint8 categories);
    /// @notice The patient always writes its own log; it cannot be its own care-team writer.
    error RecordRegistrySelfWriter(address patient);
    /// @notice `writer` is not on `patient`'s care team.
    error RecordRegistryNotAWriter(address patient, address writer);
    /// @notice `patient`'s log has no record `index` (it holds `count`).
    error RecordRegistryUnknownRecord(address patient, uint64 index, uint64 count);
    /// @notice `flags` has a bit other than disputed (1) and hidden (2).
    error RecordRegistryInvalidFlags(uint8 flags);
    /// @notice The record was sealed for the author's sequence number `given`, but its next one
    /// is `expected`: another write by the same author landed first (writes by others never
    /// cause this). Seal again for `expected` and resend.
    error RecordRegistryStaleSeq(address author, address patient, uint64 expected, uint64 given);

    /// @notice Appends a record to `patient`'s log at the next position. The caller must be the
    /// patient (registered), or an accredited provider that the patient allowed to write
    /// `category` (`setWriter`) or that holds a live emergency access covering `category`.
    /// @param patient The patient whose log the record joins.
    /// @param seq The caller's sequence number the ciphertext is bound to; must be its next one
    /// in this log (`writerOf`), which only the caller's own writes move.
    /// @param cid Binary CID of the ciphertext in IPFS.
    /// @param contentHash sha256 of the ciphertext bytes.
    /// @param category A record category, below `Categories.COUNT` (see {Categories}).
    /// @param keysCid Binary CID of the key bundle that wraps the record key for its readers.
    /// @return recordHash The new head of the patient's log.
    function addRecord(
        address patient,
        uint64 seq,
        bytes calldata cid,
        bytes32 contentHash,
        uint8 category,
        bytes calldata keysCid
    ) external returns (bytes32 recordHash);

    /// @notice Appends `pointers` to `patient`'s log in one transaction: the same checks as
    /// `addRecord` for each, one `RecordAdded` event each, in order (the author's `seq` one more
    /// each time), and the same hash chain (and head) as adding them one by one in one block.
    /// All or nothing: one invalid or refused pointer reverts the whole batch.
    /// @param patient The patient whose log the records join.
    /// @param firstSeq The caller's sequence number the first ciphertext is bound to (the next
    /// ones follow it); must be its next one in this log.
    /// @param pointers The records, in order; at least one.
    /// @return head The new head of the patient's log (the last record's hash).
    function addRecords(address patient, uint64 firstSeq, Pointer[] calldata pointers)
        external
        returns (bytes32 head);

    /// @notice The caller (a registered patient) allows `writer`, an accredited provider, to add
    /// records of `categories` (a non-empty scope bitmask) to its log, replacing any earlier set.
    function setWriter(address writer, uint8 categories) external;

    /// @notice The caller takes `writer` off its care team.
    function removeWriter(address writer) external;

    /// @notice The caller sets the flags of its own record `index`: bit 0 disputed, bit 1
    /// hidden, zero to clear.
    function flagRecord(uint64 index, uint8 flags) external;

    /// @notice The head hash of `patient`'s log (zero before the first record) and its length.
    /// @param patient The patient.
    /// @return head The last record's hash, zero before the first.
    /// @return count The number of records.
    function logOf(address patient) external view returns (bytes32 head, uint64 count);

    /// @notice What `patient` allows `writer` to write (zero: nothing; the patient itself is
    /// always allowed everything) and `writer`'s next sequence number in `patient`'s log.
    function writerOf(address patient, address writer) external view returns (uint8 categories, uint64 nextSeq);

    /// @notice The flags of record `index` of `patient` (bit 0 disputed, bit 1 hidden).
    function flagsOf(address patient, uint64 index) external view returns (uint8 flags);
}
