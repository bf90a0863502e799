// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {IKeeperDirectory} from "./interfaces/IKeeperDirectory.sol";
import {Cids} from "./libraries/Cids.sol";

/// @title KeeperDirectory
/// @notice Patients' keeper sets, keeper endpoints and key-release receipts; see {IKeeperDirectory}.
contract KeeperDirectory is IKeeperDirectory, EIP712 {
    /// Keeper sets stay small: each share is a wrap in every record's key bundle.
    uint256 public constant MAX_KEEPERS = 16;
    uint256 public constant MAX_URL_LENGTH = 256;
    /// How far a request's issuedAt may be from the time of the block a keeper decided on.
    uint256 public constant MAX_REQUEST_SKEW = 300;
    /// The reader's signed request, in the domain "medvault keeper" / "1" of this contract.
    bytes32 public constant KEY_REQUEST_TYPEHASH =
        keccak256("KeyRequest(address patient,uint64 index,address reader,address keeper,uint256 issuedAt)");

    struct KeeperSet {
        address[] keepers;
        uint8 threshold;
        bytes escrowCid;
    }

    mapping(address patient => KeeperSet) private _sets;
    mapping(address patient => mapping(address keeper => bool)) private _everKeeper;

    constructor() EIP712("medvault keeper", "1") {}

    /// @inheritdoc IKeeperDirectory
    function setKeepers(address[] calldata keepers, uint8 threshold, bytes calldata escrowCid) external {
        uint256 count = keepers.length;
        if (count == 0 ? threshold != 0 : (count > MAX_KEEPERS || threshold == 0 || threshold > count)) {
            revert KeeperDirectoryInvalidKeepers(count, threshold);
        }
        if (escrowCid.length != 0) {
            if (count == 0) revert KeeperDirectoryInvalidEscrow();
            Cids.check(escrowCid);
        }
        for (uint256 i; i < count; ++i) {
            address keeper = keepers[i];
            if (keeper == address(0)) revert KeeperDirectoryInvalidKeepers(count, threshold);
            for (uint256 j; j < i; ++j) {
                if (keeper == keepers[j]) revert KeeperDirectoryInvalidKeepers(count, threshold);
            }
            if (!_everKeeper[msg.sender][keeper]) _everKeeper[msg.sender][keeper] = true;
        }
        _sets[msg.sender] = KeeperSet(keepers, threshold, escrowCid);
        emit KeepersChosen(msg.sender, keepers, threshold, escrowCid);
    }

    /// @inheritdoc IKeeperDirectory
    function announce(string calldata url) external {
        if (bytes(url).length == 0 || bytes(url).length > MAX_URL_LENGTH) revert KeeperDirectoryInvalidUrl();
        emit KeeperAnnounced(msg.sender, url);
    }

    /// @inheritdoc IKeeperDirectory
    function recordReleases(Release[] calldata releases) external {
        for (uint256 i; i < releases.length; ++i) {
            Release calldata r = releases[i];
            if (!_everKeeper[r.patient][msg.sender]) revert KeeperDirectoryNotAKeeper(msg.sender, r.patient);
            // A decision on a block already mined, stamped with a time no later than now, on a request
            // issued within the keeper's skew of that time.
            if (
                r.decidedAt > block.number || r.releasedAt > block.timestamp
                    || (r.issuedAt > r.releasedAt ? r.issuedAt - r.releasedAt : r.releasedAt - r.issuedAt)
                        > MAX_REQUEST_SKEW
            ) revert KeeperDirectoryInvalidReceipt(i);
            bytes32 releaseId = _hashTypedDataV4(
                keccak256(abi.encode(KEY_REQUEST_TYPEHASH, r.patient, r.index, r.grantee, msg.sender, r.issuedAt))
            );
            // The third value only details a failure, which is refused as a whole below.
            // slither-disable-next-line unused-return
            (address signer, ECDSA.RecoverError failure,) = ECDSA.tryRecover(releaseId, r.signature);
            if (failure != ECDSA.RecoverError.NoError || signer != r.grantee) {
                revert KeeperDirectoryNotSignedByReader(i, r.grantee);
            }
            emit KeyReleased(r.patient, r.grantee, msg.sender, r.index, r.releasedAt, releaseId, r.decidedAt, r.issuedAt);
        }
    }

    /// @inheritdoc IKeeperDirectory
    function keepersOf(address patient)
        external
        view
        returns (address[] memory keepers, uint8 threshold, bytes memory escrowCid)
    {
        KeeperSet storage set = _sets[patient];
        return (set.keepers, set.threshold, set.escrowCid);
    }

    /// @inheritdoc IKeeperDirectory
    function wasKeeper(address patient, address keeper) external view returns (bool) {
        return _everKeeper[patient][keeper];
    }

    /// @inheritdoc IKeeperDirectory
    // slither-disable-next-line naming-convention
    function DOMAIN_SEPARATOR() external view returns (bytes32) {
        return _domainSeparatorV4();
    }
}
