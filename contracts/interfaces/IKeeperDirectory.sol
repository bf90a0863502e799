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
interface IKeeperDirectory {
    /// @notice One release: keeper `msg.sender` gave its share of record `index` of `patient` to
    /// `grantee`.
    /// @param patient The patient whose record key it is.
    /// @param index The record's position in the patient's log.
    /// @param grantee The reader the share went to.
    /// @param releasedAt When the keeper released it.
    /// @param releaseId The keeper's id for the release (the hash of the signed request).
    struct Release {
        address patient;
        uint64 index;
        address grantee;
        uint40 releasedAt;
        bytes32 releaseId;
    }

    /// @notice `patient` chose `keepers`, any `threshold` of which can release a record key.
    /// @param patient The patient.
    /// @param keepers The keepers, in share order; empty when the patient removed them.
    /// @param threshold How many shares rebuild a key (zero with no keepers).
    event KeepersChosen(address indexed patient, address[] keepers, uint8 threshold);
    /// @notice `keeper` serves key requests at `url`.
    /// @param keeper The keeper.
    /// @param url Where it serves.
    event KeeperAnnounced(address indexed keeper, string url);
    /// @notice `keeper` released its share of record `index` of `patient` to `grantee`.
    /// @param patient The patient whose record key it is.
    /// @param grantee The reader the share went to.
    /// @param keeper The keeper that released it.
    /// @param index The record's position in the patient's log.
    /// @param releasedAt When the keeper released it.
    /// @param releaseId The keeper's id for the release.
    event KeyReleased(
        address indexed patient,
        address indexed grantee,
        address indexed keeper,
        uint64 index,
        uint40 releasedAt,
        bytes32 releaseId
    );

    /// @notice The keeper set is empty, too large, has duplicates or the zero address, or the
    /// threshold is not between 1 and the number of keepers.
    /// @param count The number of keepers given.
    /// @param threshold The threshold given.
    error KeeperDirectoryInvalidKeepers(uint256 count, uint8 threshold);
    /// @notice The URL is empty or too long.
    error KeeperDirectoryInvalidUrl();
    /// @notice The caller is not a keeper of `patient`.
    /// @param keeper The caller.
    /// @param patient The patient a receipt named.
    error KeeperDirectoryNotAKeeper(address keeper, address patient);

    /// @notice Chooses the caller's keepers and threshold (an empty list removes them).
    /// @param keepers Up to `MAX_KEEPERS` distinct, non-zero addresses, in share order.
    /// @param threshold 1 to the number of keepers; zero with an empty list.
    function setKeepers(address[] calldata keepers, uint8 threshold) external;

    /// @notice Announces the URL the calling keeper serves at.
    /// @param url 1 to `MAX_URL_LENGTH` bytes.
    function announce(string calldata url) external;

    /// @notice Posts receipts for releases the calling keeper made; each names a patient whose
    /// keeper the caller is.
    /// @param releases The receipts; one `KeyReleased` event each, in order.
    function recordReleases(Release[] calldata releases) external;

    /// @notice The keepers `patient` chose, and the threshold.
    /// @param patient The patient.
    /// @return keepers The keepers, in share order.
    /// @return threshold How many shares rebuild a key.
    function keepersOf(address patient) external view returns (address[] memory keepers, uint8 threshold);
}
