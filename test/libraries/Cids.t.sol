// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";
import {Cids} from "../../contracts/libraries/Cids.sol";

/// @notice Calls the library with calldata, as the contracts do.
contract CidsHarness {
    function isValid(bytes calldata cid) external pure returns (bool) {
        return Cids.isValid(cid);
    }

    function check(bytes calldata cid) external pure {
        Cids.check(cid);
    }
}

/// @notice The accepted pointers against the documented layout, written out here:
/// 0x01 (CIDv1) || 0x55 (raw) or 0x70 (dag-pb) || 0x12 (sha2-256) || 0x20 (32) || digest.
contract CidsTest is Test {
    CidsHarness internal cids = new CidsHarness();
    bytes32 internal constant DIGEST = keccak256("any 32-byte digest");

    function test_accepts_RawAndDagPb() public view {
        assertTrue(cids.isValid(abi.encodePacked(hex"01551220", DIGEST)), "raw");
        assertTrue(cids.isValid(abi.encodePacked(hex"01701220", DIGEST)), "dag-pb");
        // The check passes for the same bytes.
        cids.check(abi.encodePacked(hex"01701220", DIGEST));
    }

    function test_refuses_EachWrongPrefixByte() public {
        // CIDv0 is the bare multihash; 0x00 and 0x02 are no CID version in use.
        _assertRefused(abi.encodePacked(hex"00551220", DIGEST), "version 0");
        _assertRefused(abi.encodePacked(hex"02551220", DIGEST), "version 2");
        _assertRefused(abi.encodePacked(hex"01711220", DIGEST), "dag-cbor");
        _assertRefused(abi.encodePacked(hex"01291220", DIGEST), "dag-json");
        _assertRefused(abi.encodePacked(hex"01001220", DIGEST), "identity codec");
        _assertRefused(abi.encodePacked(hex"01551320", DIGEST), "sha2-512 code");
        _assertRefused(abi.encodePacked(hex"01551620", DIGEST), "sha3-256");
        _assertRefused(abi.encodePacked(hex"01550020", DIGEST), "identity hash");
        _assertRefused(abi.encodePacked(hex"01551221", DIGEST), "digest length 33");
        _assertRefused(abi.encodePacked(hex"0155121f", DIGEST), "digest length 31");
    }

    function test_refuses_OtherHashesOfOtherLengths() public {
        _assertRefused(abi.encodePacked(hex"12", hex"20", DIGEST), "CIDv0 (34 bytes)");
        _assertRefused(abi.encodePacked(hex"01551340", DIGEST, DIGEST), "sha2-512 (68 bytes)");
        // blake2b-256: multihash code 0xb220 as a varint (0xa0 0xe4 0x02), then 32.
        _assertRefused(abi.encodePacked(hex"0155a0e40220", DIGEST), "blake2b-256 (38 bytes)");
    }

    function test_refuses_WrongLengths() public {
        _assertRefused("", "empty");
        _assertRefused(hex"01", "one byte");
        _assertRefused(hex"01551220", "prefix only");
        bytes memory cid = abi.encodePacked(hex"01551220", DIGEST);
        _assertRefused(_slice(cid, 35), "truncated digest");
        _assertRefused(abi.encodePacked(cid, hex"00"), "37 bytes");
        _assertRefused(abi.encodePacked(cid, cid), "two CIDs");
    }

    function testFuzz_isValid_IffTheLayout(bytes calldata cid) public view {
        bool layout = cid.length == 36
            && (bytes4(cid[:4]) == bytes4(0x01551220) || bytes4(cid[:4]) == bytes4(0x01701220));
        assertEq(cids.isValid(cid), layout);
    }

    function testFuzz_isValid_AnyDigest(bytes32 digest, bool dagPb) public view {
        assertTrue(cids.isValid(abi.encodePacked(dagPb ? bytes4(0x01701220) : bytes4(0x01551220), digest)));
    }

    function testFuzz_refuses_AnyOtherPrefix(bytes4 prefix, bytes32 digest) public {
        vm.assume(prefix != bytes4(0x01551220) && prefix != bytes4(0x01701220));
        _assertRefused(abi.encodePacked(prefix, digest), "prefix");
    }

    /// `cid` is not valid, and `check` reverts with InvalidCid(cid).
    function _assertRefused(bytes memory cid, string memory what) internal {
        assertFalse(cids.isValid(cid), what);
        vm.expectRevert(abi.encodeWithSelector(Cids.InvalidCid.selector, cid));
        cids.check(cid);
    }

    function _slice(bytes memory data, uint256 length) internal pure returns (bytes memory out) {
        out = new bytes(length);
        for (uint256 i; i < length; ++i) {
            out[i] = data[i];
        }
    }
}
