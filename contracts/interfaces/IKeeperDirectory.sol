// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Keeper directory
/// @notice Key-release keepers and the receipts of what they released. A patient chooses the
/// keepers that hold t-of-n shares of their record keys; a keeper announces where it serves;
/// every key share a keeper releases to a grantee is accounted for by a receipt event, posted
/// in batches.
/// @dev Keepers check consent on chain before releasing; this contract only names them and
/// keeps the trail. Receipts are events, not storage: a keeper that restarts looks up its own
/// `KeyReleased` events to avoid posting a receipt twice.
///
/// A receipt is a keeper's attestation, made verifiable: it carries the reader's EIP-712
/// signature of its `KeyRequest` (checked here, so no keeper can post a receipt for a request
/// the reader never signed) and the block the keeper decided on (its number and timestamp,
/// which anyone can compare with the chain). It does not prove that the share was sent, nor
/// that consent held at that block: both can be checked, the second against the chain's state
/// at `decidedAt`.
interface IKeeperDirectory {
    /// @notice One release: keeper `msg.sender` gave its share of record `index` of `patient` to
    /// `grantee`, which asked with a signed `KeyRequest`.
    /// @param patient The patient whose record key it is.
    /// @param index The record's position in the patient's log.
    /// @param grantee The reader the share went to, the signer of the request.
    /// @param issuedAt The request's `issuedAt`.
    /// @param releasedAt The timestamp of block `decidedAt`.
    /// @param decidedAt The number of the block the keeper decided on (mined, so not after this one).
    /// @param signature The reader's 65-byte signature of the `KeyRequest`.
    struct Release {
        address patient;
        uint64 index;
        address grantee;
        uint40 issuedAt;
        uint40 releasedAt;
        uint64 decidedAt;
        bytes signature;
    }

    /// @notice `patient` chose `keepers`, any `threshold` of which can release a record key.
    /// @param patient The patient.
    /// @param keepers The keepers, in share order; empty when the patient removed them.
    /// @param threshold How many shares rebuild a key (zero with no keepers).
    /// @param escrowCid The key bundle that escrows the keys of the records written before,
    /// for these keepers (empty if there were none).
    event KeepersChosen(address indexed patient, address[] keepers, uint8 threshold, bytes escrowCid);
    /// @notice `keeper` serves key requests at `url`.
    /// @param keeper The keeper.
    /// @param url Where it serves.
    event KeeperAnnounced(address indexed keeper, string url);
    /// @notice `keeper` released its share of record `index` of `patient` to `grantee`.
    /// @param patient The patient whose record key it is.
    /// @param grantee The reader the share went to.
    /// @param keeper The keeper that released it.
    /// @param index The record's position in the patient's log.
    /// @param releasedAt The timestamp of the block the keeper decided on.
    /// @param releaseId The EIP-712 digest of the reader's request, whose signature was checked.
    /// @param decidedAt The number of the block the keeper decided on.
    /// @param issuedAt The request's `issuedAt`.
    event KeyReleased(
        address indexed patient,
        address indexed grantee,
        address indexed keeper,
        uint64 index,
        uint40 releasedAt,
        bytes32 releaseId,
        uint64 decidedAt,
        uint40 issuedAt
    );

    /// @notice The keeper set is empty, too large, has duplicates or the zero address, or the
    /// threshold is not between 1 and the number of keepers.
    /// @param count The number of keepers given.
    /// @param threshold The threshold given.
    error KeeperDirectoryInvalidKeepers(uint256 count, uint8 threshold);
    /// @notice An escrow CID is given with no keepers. (One that is not a sha2-256 CIDv1, raw or
    /// dag-pb, is refused with {Cids-InvalidCid}.)
    error KeeperDirectoryInvalidEscrow();
    /// @notice The URL is empty or too long.
    error KeeperDirectoryInvalidUrl();
    /// @notice The caller never was a keeper of `patient`.
    /// @param keeper The caller.
    /// @param patient The patient a receipt named.
    error KeeperDirectoryNotAKeeper(address keeper, address patient);
    /// @notice Receipt `position` names a block not yet mined, a time later than now, or a request
    /// issued more than `MAX_REQUEST_SKEW` seconds from that time.
    /// @param position The receipt's position in the batch.
    error KeeperDirectoryInvalidReceipt(uint256 position);
    /// @notice Receipt `position` does not carry `grantee`'s signature of its request.
    /// @param position The receipt's position in the batch.
    /// @param grantee The reader it names.
    error KeeperDirectoryNotSignedByReader(uint256 position, address grantee);

    /// @notice Chooses the caller's keepers and threshold (an empty list removes them).
    /// @param keepers Up to `MAX_KEEPERS` distinct, non-zero addresses, in share order.
    /// @param threshold 1 to the number of keepers; zero with an empty list.
    /// @param escrowCid The binary CID (see {Cids}) of the key bundle re-escrowing the keys of
    /// existing records for `keepers` (empty when there are none); keepers and readers use it
    /// for every record it covers.
    function setKeepers(address[] calldata keepers, uint8 threshold, bytes calldata escrowCid) external;

    /// @notice Announces the URL the calling keeper serves at.
    /// @param url 1 to `MAX_URL_LENGTH` bytes.
    function announce(string calldata url) external;

    /// @notice Posts receipts for releases the calling keeper made; each names a patient whose
    /// keeper the caller is or was, and carries the reader's signed request.
    /// @param releases The receipts; one `KeyReleased` event each, in order.
    function recordReleases(Release[] calldata releases) external;

    /// @notice The keepers `patient` chose, the threshold, and the re-escrow bundle of older records.
    /// @param patient The patient.
    /// @return keepers The keepers, in share order.
    /// @return threshold How many shares rebuild a key.
    /// @return escrowCid The key bundle escrowing earlier records' keys for this set (may be empty).
    function keepersOf(address patient)
        external
        view
        returns (address[] memory keepers, uint8 threshold, bytes memory escrowCid);

    /// @notice Whether `keeper` is or ever was one of `patient`'s keepers (its receipts are accepted).
    /// @param patient The patient.
    /// @param keeper The keeper.
    /// @return Whether it was ever named.
    function wasKeeper(address patient, address keeper) external view returns (bool);

    /// @notice The EIP-712 domain separator of key requests ("medvault keeper", "1", chain, this contract).
    /// @return The domain separator.
    function DOMAIN_SEPARATOR() external view returns (bytes32);
}
