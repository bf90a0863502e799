// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {VmSafe} from "forge-std/Vm.sol";
import {IConsentManager} from "../../contracts/interfaces/IConsentManager.sol";

/// @notice EIP-712 helpers for {ConsentManager} tests, rebuilt from the documented type strings
/// (never read back from the contract) so that a drift in the contract's hashing shows up.
/// The typehashes and struct encodings repeat the contract's on purpose: this is the
/// independent oracle; keep the copy.
library ConsentSig {
    VmSafe private constant VM = VmSafe(address(uint160(uint256(keccak256("hevm cheat code")))));

    string internal constant NAME = "medvault ConsentManager";
    string internal constant VERSION = "1";

    bytes32 internal constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 internal constant GRANT_TYPEHASH = keccak256(
        "Grant(address patient,address grantee,uint8 scopes,uint8 purpose,uint40 validFrom,uint40 validUntil,bytes keysCid,uint256 nonce,uint256 deadline)"
    );
    bytes32 internal constant REVOKE_TYPEHASH =
        keccak256("Revoke(address patient,address grantee,uint256 nonce,uint256 deadline)");
    bytes32 internal constant APPOINT_DELEGATE_TYPEHASH = keccak256(
        "AppointDelegate(address patient,address delegate,uint8 scopes,uint40 maxDuration,bool openHistory,uint256 nonce,uint256 deadline)"
    );
    bytes32 internal constant REMOVE_DELEGATE_TYPEHASH =
        keccak256("RemoveDelegate(address patient,address delegate,bool keepGrants,uint256 nonce,uint256 deadline)");

    /// The delegate terms the suites appoint with unless a test says otherwise: every category,
    /// windows up to a year, no history.
    uint8 internal constant DELEGATE_SCOPES = 0x3f;
    uint40 internal constant DELEGATE_MAX = 365 days;
    bool internal constant DELEGATE_HISTORY = false;
    bytes32 internal constant APPROVE_REQUEST_TYPEHASH = keccak256(
        "ApproveRequest(address patient,address researcher,uint8 scopes,uint8 purpose,uint40 duration,uint40 requestedAt,bytes32 studyId,bytes keysCid,uint256 nonce,uint256 deadline)"
    );
    bytes32 internal constant DENY_REQUEST_TYPEHASH = keccak256(
        "DenyRequest(address patient,address researcher,uint8 scopes,uint8 purpose,uint40 duration,uint40 requestedAt,bytes32 studyId,uint256 nonce,uint256 deadline)"
    );

    function domainSeparator(uint256 chainId, address verifyingContract) internal pure returns (bytes32) {
        return keccak256(
            abi.encode(DOMAIN_TYPEHASH, keccak256(bytes(NAME)), keccak256(bytes(VERSION)), chainId, verifyingContract)
        );
    }

    function digest(bytes32 domain, bytes32 structHash) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked("\x19\x01", domain, structHash));
    }

    function grantHash(
        address patient,
        address grantee,
        uint8 scopes,
        uint8 purpose,
        uint40 validFrom,
        uint40 validUntil,
        bytes memory keysCid,
        uint256 nonce,
        uint256 deadline
    ) internal pure returns (bytes32) {
        return keccak256(
            abi.encode(
                GRANT_TYPEHASH,
                patient,
                grantee,
                scopes,
                purpose,
                validFrom,
                validUntil,
                keccak256(keysCid),
                nonce,
                deadline
            )
        );
    }

    function revokeHash(address patient, address grantee, uint256 nonce, uint256 deadline)
        internal
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(REVOKE_TYPEHASH, patient, grantee, nonce, deadline));
    }

    function appointHash(address patient, address delegate, uint256 nonce, uint256 deadline)
        internal
        pure
        returns (bytes32)
    {
        return appointHashWith(patient, delegate, DELEGATE_SCOPES, DELEGATE_MAX, DELEGATE_HISTORY, nonce, deadline);
    }

    function appointHashWith(
        address patient,
        address delegate,
        uint8 scopes,
        uint40 maxDuration,
        bool openHistory,
        uint256 nonce,
        uint256 deadline
    ) internal pure returns (bytes32) {
        return keccak256(
            abi.encode(APPOINT_DELEGATE_TYPEHASH, patient, delegate, scopes, maxDuration, openHistory, nonce, deadline)
        );
    }

    function removeHash(address patient, address delegate, uint256 nonce, uint256 deadline)
        internal
        pure
        returns (bytes32)
    {
        return removeHashWith(patient, delegate, false, nonce, deadline);
    }

    function removeHashWith(address patient, address delegate, bool keepGrants, uint256 nonce, uint256 deadline)
        internal
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(REMOVE_DELEGATE_TYPEHASH, patient, delegate, keepGrants, nonce, deadline));
    }

    function approveHash(
        IConsentManager.AccessRequest memory r,
        bytes memory keysCid,
        uint256 nonce,
        uint256 deadline
    ) internal pure returns (bytes32) {
        return keccak256(
            abi.encode(
                APPROVE_REQUEST_TYPEHASH,
                r.patient,
                r.researcher,
                r.scopes,
                r.purpose,
                r.duration,
                r.requestedAt,
                r.studyId,
                keccak256(keysCid),
                nonce,
                deadline
            )
        );
    }

    function denyHash(IConsentManager.AccessRequest memory r, uint256 nonce, uint256 deadline)
        internal
        pure
        returns (bytes32)
    {
        return keccak256(
            abi.encode(
                DENY_REQUEST_TYPEHASH,
                r.patient,
                r.researcher,
                r.scopes,
                r.purpose,
                r.duration,
                r.requestedAt,
                r.studyId,
                nonce,
                deadline
            )
        );
    }

    /// Signs `structHash` under `signedDomain` and claims (`claimedChainId`, `claimedContract`)
    /// in the authorization; the compact form is built by hand from (v, r, s) (EIP-2098).
    function sign(
        uint256 privateKey,
        bytes32 signedDomain,
        bytes32 structHash,
        uint256 nonce,
        uint256 deadline,
        uint256 claimedChainId,
        address claimedContract
    ) internal pure returns (IConsentManager.Authorization memory auth) {
        (uint8 v, bytes32 r, bytes32 s) = VM.sign(privateKey, digest(signedDomain, structHash));
        auth = IConsentManager.Authorization({
            nonce: nonce,
            deadline: deadline,
            chainId: claimedChainId,
            verifyingContract: claimedContract,
            r: r,
            vs: bytes32(uint256(s) | (uint256(v - 27) << 255))
        });
    }

    /// The address `auth` recovers to over `digest_` (what the contract will see as signer).
    function recover(bytes32 digest_, IConsentManager.Authorization memory auth) internal pure returns (address) {
        bytes32 s = bytes32(uint256(auth.vs) & ((uint256(1) << 255) - 1));
        uint8 v = uint8(uint256(auth.vs) >> 255) + 27;
        return ecrecover(digest_, v, auth.r, s);
    }
}
