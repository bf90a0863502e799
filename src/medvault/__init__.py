"""medvault: patient-owned medical records.

Consent and record pointers live in Solidity contracts; record payloads are encrypted on the
client (AES-256-GCM, one key per record, wrapped with HPKE for each reader) and stored in IPFS.

    from medvault import Chain, IpfsClient, Keystore, Medvault

    mv = Medvault(Chain.open(rpc_url, home), IpfsClient(ipfs_api))
    alice = Keystore(home).unlock("alice")
    record = mv.read_record(alice, alice.address, 0)

This module is the library's public API (guarded by tests/unit/test_public_api.py). The CLI is
``medvault.cli``; development tooling (local nodes, seeding, benchmarks, the demo) is
``medvault.dev``, which the library never imports.
"""

import medvault.fast_keccak  # noqa: F401 - first: selects the fast keccak backend before anything hashes
from medvault.accounts import Keystore, Wallet
from medvault.chain import Chain, Deployment, TxResult, connect, deploy
from medvault.client import Medvault
from medvault.client.consent_sig import ConsentChange, SignedConsent
from medvault.crypto import KeySuite
from medvault.errors import (
    AccessDeniedError,
    BadRecordError,
    ChainUnavailableError,
    CidMismatchError,
    ConfigurationError,
    ContentHashMismatchError,
    ContractError,
    DecryptionError,
    FhirValidationError,
    IntegrityError,
    InvalidCidError,
    IpfsError,
    IpfsUnavailableError,
    KeeperRefusedError,
    KeystoreError,
    MedvaultError,
    NodeStartError,
    NodeUnavailableError,
    ObjectTooLargeError,
    SeedError,
    UnknownAccountError,
    UnusableKeyError,
    WrongPassphraseError,
)
from medvault.formats.keybundle import KeyBundle
from medvault.index import EventIndex
from medvault.ipfs import IpfsClient
from medvault.keeper import KeeperService
from medvault.model import (
    AccessRequest,
    AuditEntry,
    Category,
    Grant,
    GrantReceipt,
    GrantTerms,
    KeeperSet,
    KeyInfo,
    KeyRelease,
    KeyRotation,
    Purpose,
    Record,
    RecordPointer,
    RecordReceipt,
    RequestStatus,
    Role,
)
from medvault.verify import VerificationReport, verify_patient

__all__ = [
    "AccessDeniedError",
    "AccessRequest",
    "AuditEntry",
    "BadRecordError",
    "Category",
    "Chain",
    "ChainUnavailableError",
    "CidMismatchError",
    "ConfigurationError",
    "ConsentChange",
    "ContentHashMismatchError",
    "ContractError",
    "DecryptionError",
    "Deployment",
    "EventIndex",
    "FhirValidationError",
    "Grant",
    "GrantReceipt",
    "GrantTerms",
    "IntegrityError",
    "InvalidCidError",
    "IpfsClient",
    "IpfsError",
    "IpfsUnavailableError",
    "KeeperRefusedError",
    "KeeperService",
    "KeeperSet",
    "KeyBundle",
    "KeyInfo",
    "KeyRelease",
    "KeyRotation",
    "KeySuite",
    "Keystore",
    "KeystoreError",
    "Medvault",
    "MedvaultError",
    "NodeStartError",
    "NodeUnavailableError",
    "ObjectTooLargeError",
    "Purpose",
    "Record",
    "RecordPointer",
    "RecordReceipt",
    "RequestStatus",
    "Role",
    "SeedError",
    "SignedConsent",
    "TxResult",
    "UnknownAccountError",
    "UnusableKeyError",
    "VerificationReport",
    "Wallet",
    "WrongPassphraseError",
    "connect",
    "deploy",
    "verify_patient",
]
