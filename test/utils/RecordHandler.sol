// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "forge-std/Test.sol";
import {RecordRegistry} from "../../contracts/RecordRegistry.sol";
import {IRecordRegistry} from "../../contracts/interfaces/IRecordRegistry.sol";
import {EmergencyAccessMock} from "./EmergencyAccessMock.sol";

/// @notice Drives one patient's record log with random writes, care-team changes and emergencies,
/// and keeps a model of who may write what: every write the model refuses must revert, and every
/// write it allows must land.
contract RecordHandler is Test {
    RecordRegistry public immutable records;
    EmergencyAccessMock public immutable emergency;
    address public immutable patient;
    // Two record pointers (binary CIDv1, raw, sha2-256), reused: the log does not care.
    bytes internal constant CID_1 = hex"015512201111111111111111111111111111111111111111111111111111111111111111";
    bytes internal constant CID_2 = hex"015512202222222222222222222222222222222222222222222222222222222222222222";

    /// The patient, then accredited providers (care team or not), then an unaccredited stranger.
    address[] internal _authors;
    mapping(address author => uint8 categories) public modelWriter;
    mapping(address author => uint8 scopes) public modelEmergency;

    uint256 public ghost_landed;
    uint256 public ghost_refused;
    uint256 public ghost_unauthorizedLanded;
    uint256 public ghost_allowedRefused;

    constructor(RecordRegistry records_, EmergencyAccessMock emergency_, address patient_, address[] memory providers, address stranger) {
        records = records_;
        emergency = emergency_;
        patient = patient_;
        _authors.push(patient_);
        for (uint256 i; i < providers.length; ++i) {
            _authors.push(providers[i]);
        }
        _authors.push(stranger);
    }

    function authors() external view returns (address[] memory) {
        return _authors;
    }

    function _isProvider(address author) internal view returns (bool) {
        return author != patient && author != _authors[_authors.length - 1];
    }

    /// Whether the model lets `author` write `category` now.
    function allowed(address author, uint8 category) public view returns (bool) {
        if (category >= 6) return false;
        if (author == patient) return true;
        if (!_isProvider(author)) return false;
        return ((modelWriter[author] | modelEmergency[author]) >> category) & 1 == 1;
    }

    function write(uint256 authorSeed, uint256 categorySeed, uint256 batch) external {
        address author = _authors[bound(authorSeed, 0, _authors.length - 1)];
        uint8 category = uint8(bound(categorySeed, 0, 6));
        (, uint64 seq) = records.writerOf(patient, author);
        bool ok;
        vm.prank(author);
        if (batch % 2 == 0) {
            try records.addRecord(patient, seq, CID_1, bytes32(uint256(1)), category, CID_1) {
                ok = true;
            } catch {}
        } else {
            IRecordRegistry.Pointer[] memory pointers = new IRecordRegistry.Pointer[](2);
            pointers[0] = IRecordRegistry.Pointer(CID_1, bytes32(uint256(1)), category, CID_1);
            pointers[1] = IRecordRegistry.Pointer(CID_2, bytes32(uint256(2)), category, CID_2);
            try records.addRecords(patient, seq, pointers) {
                ok = true;
            } catch {}
        }
        bool expected = allowed(author, category);
        if (ok) {
            ghost_landed += batch % 2 == 0 ? 1 : 2;
            if (!expected) ++ghost_unauthorizedLanded;
        } else {
            ++ghost_refused;
            if (expected) ++ghost_allowedRefused;
        }
    }

    function setWriter(uint256 authorSeed, uint8 categories) external {
        address writer = _authors[bound(authorSeed, 1, _authors.length - 2)];
        categories = uint8(bound(categories, 1, 0x3f));
        vm.prank(patient);
        records.setWriter(writer, categories);
        modelWriter[writer] = categories;
    }

    function removeWriter(uint256 authorSeed) external {
        address writer = _authors[bound(authorSeed, 1, _authors.length - 2)];
        if (modelWriter[writer] == 0) return;
        vm.prank(patient);
        records.removeWriter(writer);
        modelWriter[writer] = 0;
    }

    function setEmergency(uint256 authorSeed, uint8 scopes) external {
        address provider = _authors[bound(authorSeed, 1, _authors.length - 1)];
        scopes = uint8(bound(scopes, 0, 0x3f));
        emergency.setScopes(patient, provider, scopes);
        // The stranger is not accredited: its "emergency" must never let it write.
        modelEmergency[provider] = scopes;
    }
}
