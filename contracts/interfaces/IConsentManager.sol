// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Consent manager
/// @notice A patient grants and revokes a grantee's access to the patient's records.
/// @dev The chain decides who may obtain a record key and until when. A revoke stops every
/// future key release and wrap; it cannot recall what a grantee already decrypted.
interface IConsentManager {
    /// @notice `patient` let `grantee` read the patient's records until `validUntil` (unix seconds).
    /// @param keysCid Binary CID of a key bundle wrapping existing record keys for `grantee`
    /// (empty if there is none); publishing it here makes the key release part of the trail.
    event AccessGranted(address indexed patient, address indexed grantee, uint64 validUntil, bytes keysCid);
    /// @notice `patient` withdrew `grantee`'s access.
    event AccessRevoked(address indexed patient, address indexed grantee);

    /// @notice A patient cannot grant to the zero address or to themselves.
    error ConsentManagerInvalidGrantee(address grantee);
    /// @notice `validUntil` is not in the future.
    error ConsentManagerInvalidExpiry(uint64 validUntil, uint256 nowTimestamp);
    /// @notice There is no active grant from `patient` to `grantee` to revoke.
    error ConsentManagerNoActiveGrant(address patient, address grantee);

    /// @notice Grants (or replaces the grant of) `grantee` access to the caller's records, and
    /// publishes the bundle of existing record keys wrapped for `grantee`, if any.
    function grant(address grantee, uint64 validUntil, bytes calldata keysCid) external;

    /// @notice Revokes `grantee`'s access to the caller's records at once.
    function revoke(address grantee) external;

    /// @notice Whether `grantee` may read `patient`'s records now.
    function canRead(address patient, address grantee) external view returns (bool);

    /// @notice The end of `grantee`'s access to `patient`'s records (zero if none or revoked).
    function grantOf(address patient, address grantee) external view returns (uint64 validUntil);
}
