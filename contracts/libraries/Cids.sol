// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Cids
/// @notice The IPFS pointers the contracts accept: binary CIDv1 with a sha2-256 multihash and
/// the raw (0x55) or dag-pb (0x70) codec, as medvault adds content (docs/FORMATS.md, "CIDs"):
/// `0x01 || codec || 0x12 || 0x20 || 32-byte digest`, exactly 36 bytes. Anything else (CIDv0,
/// another codec or hash, a truncated digest) would point readers, keepers and the index at
/// bytes no one can check, so it is refused where it enters.
library Cids {
    /// @notice The length of an accepted binary CID: four prefix bytes and a 32-byte digest.
    uint256 internal constant LENGTH = 36;
    /// @notice The prefix of a raw-codec CID: CIDv1, raw, sha2-256, 32 bytes.
    bytes4 internal constant RAW = 0x01551220;
    /// @notice The prefix of a dag-pb CID (content above one 256 KiB chunk).
    bytes4 internal constant DAG_PB = 0x01701220;

    /// @notice `cid` is not a binary CIDv1 with a sha2-256 multihash and the raw or dag-pb codec.
    /// @param cid The bytes refused.
    error InvalidCid(bytes cid);

    /// @notice Whether `cid` is an accepted pointer.
    /// @param cid A binary CID.
    /// @return True if it is 36 bytes starting with `RAW` or `DAG_PB`.
    function isValid(bytes calldata cid) internal pure returns (bool) {
        if (cid.length != LENGTH) return false;
        bytes4 prefix = bytes4(cid[:4]);
        return prefix == RAW || prefix == DAG_PB;
    }

    /// @notice Reverts with `InvalidCid` unless `cid` is an accepted pointer.
    /// @param cid A binary CID.
    function check(bytes calldata cid) internal pure {
        if (!isValid(cid)) revert InvalidCid(cid);
    }
}
