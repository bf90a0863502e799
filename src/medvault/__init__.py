"""medvault: patient-owned medical records.

Consent and record pointers live in Solidity contracts; record payloads are encrypted on the
client (AES-256-GCM, one key per record, wrapped with HPKE for each reader) and stored in IPFS.

    from medvault import Chain, IpfsClient, Keystore, Medvault

    mv = Medvault(Chain.open(rpc_url, home), IpfsClient(ipfs_api))
    alice = Keystore(home).unlock("alice")
    record = mv.read_record(alice, alice.address, 0)
"""

from medvault.accounts import Keystore, Wallet
from medvault.chain import Chain, TxResult, deploy
from medvault.chain.artifacts import Deployment
from medvault.client import Medvault
from medvault.client.consent_sig import ConsentChange, SignedConsent
from medvault.crypto import KeySuite
from medvault.dev.node import LocalNode
from medvault.errors import (
    AccessDeniedError,
    ChainUnavailableError,
    CidMismatchError,
    ConfigurationError,
    ContentHashMismatchError,
    ContractError,
    DecryptionError,
    IntegrityError,
    InvalidCidError,
    IpfsError,
    IpfsUnavailableError,
    KeystoreError,
    MedvaultError,
    NodeUnavailableError,
    UnknownAccountError,
    WrongPassphraseError,
)
from medvault.ipfs import IpfsClient
from medvault.model import (
    AccessRequest,
    Category,
    Grant,
    Purpose,
    Record,
    RecordPointer,
    RecordReceipt,
    RequestStatus,
    Role,
)

__all__ = [
    "AccessDeniedError",
    "AccessRequest",
    "Category",
    "Chain",
    "ChainUnavailableError",
    "CidMismatchError",
    "ConfigurationError",
    "ConsentChange",
    "ContentHashMismatchError",
    "ContractError",
    "DecryptionError",
    "Grant",
    "Deployment",
    "IntegrityError",
    "InvalidCidError",
    "IpfsClient",
    "IpfsError",
    "IpfsUnavailableError",
    "KeySuite",
    "Keystore",
    "KeystoreError",
    "LocalNode",
    "Medvault",
    "MedvaultError",
    "NodeUnavailableError",
    "Purpose",
    "Record",
    "RecordPointer",
    "RecordReceipt",
    "RequestStatus",
    "Role",
    "SignedConsent",
    "TxResult",
    "UnknownAccountError",
    "Wallet",
    "WrongPassphraseError",
    "deploy",
]
