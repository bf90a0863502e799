"""Errors raised by medvault.

Every error names what is wrong and, where one exists, what to do about it. Catch
``MedvaultError`` for all of them; the builtin mixins let callers also catch by kind::

    MedvaultError
    ├── ConfigurationError            missing deployment, unknown account, bad settings
    │   └── UnknownAccountError (LookupError)
    ├── KeystoreError                 a keystore cannot be read or written
    │   └── WrongPassphraseError (ValueError)
    ├── NodeUnavailableError (ConnectionError)
    │   ├── ChainUnavailableError     the Ethereum JSON-RPC endpoint does not answer
    │   └── IpfsUnavailableError      the Kubo RPC endpoint does not answer
    ├── SeedError                     seeding cannot go on (not a dev chain, a failed transaction)
    ├── NodeStartError                a local anvil or Kubo (``medvault node up``) did not start
    ├── IpfsError                     Kubo answered with an error
    │   └── ObjectTooLargeError       an IPFS object over the size limit for what it should be
    ├── InvalidCidError (ValueError)  a string or bytes that is not a CID
    ├── FhirValidationError (ValueError)  a resource that is not valid FHIR R4
    ├── IntegrityError (ValueError)   bytes that are not what the chain committed to
    │   ├── CidMismatchError          IPFS returned bytes that do not hash to the CID
    │   ├── ContentHashMismatchError  ciphertext differs from the on-chain content hash
    │   ├── BadRecordError            one record of a log cannot be used; the rest can
    │   ├── DecryptionError           authentication failed: tampered or wrong key
    │   └── UnusableKeyError          a published key nothing can be wrapped for (malformed, low-order)
    ├── AccessDeniedError (PermissionError)   the chain does not let this account read
    │   └── KeeperRefusedError        too few key-release keepers released their shares
    └── ContractError                 a transaction or call reverted
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "AccessDeniedError",
    "BadRecordError",
    "ChainUnavailableError",
    "CidMismatchError",
    "ConfigurationError",
    "ContentHashMismatchError",
    "ContractError",
    "DecryptionError",
    "FhirValidationError",
    "IntegrityError",
    "InvalidCidError",
    "IpfsError",
    "IpfsUnavailableError",
    "KeeperRefusedError",
    "KeystoreError",
    "MedvaultError",
    "NodeStartError",
    "NodeUnavailableError",
    "ObjectTooLargeError",
    "SeedError",
    "UnknownAccountError",
    "UnusableKeyError",
    "WrongPassphraseError",
]


class MedvaultError(Exception):
    """Root of every error medvault raises on purpose."""


class ConfigurationError(MedvaultError):
    """Settings, deployments or accounts are missing or inconsistent."""


class UnknownAccountError(ConfigurationError, LookupError):
    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        hint = f"known: {', '.join(known)}" if known else "no accounts yet: run `medvault account new NAME`"
        super().__init__(f"unknown account {name!r} ({hint})")


class KeystoreError(MedvaultError):
    """A keystore file cannot be read, decrypted or written."""


class WrongPassphraseError(KeystoreError, ValueError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"wrong passphrase for keystore {name!r}: the key was not decrypted")


class NodeUnavailableError(MedvaultError, ConnectionError):
    """A node this operation needs does not answer."""

    service = "node"

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        super().__init__(f"{self.service} at {url} is not reachable ({reason}); is it running? try `medvault node up`")


class ChainUnavailableError(NodeUnavailableError):
    service = "Ethereum node"


class IpfsUnavailableError(NodeUnavailableError):
    service = "IPFS (Kubo) node"


class IpfsError(MedvaultError):
    """Kubo answered a request with an error."""

    def __init__(self, command: str, message: str) -> None:
        self.command = command
        super().__init__(f"IPFS {command} failed: {message}")


class ObjectTooLargeError(IpfsError):
    """An IPFS object states, or streams, more bytes than a ciphertext or key bundle may have."""

    def __init__(self, cid: str, size: str, limit: int, what: str, setting: str) -> None:
        self.command, self.cid, self.limit = "cat", cid, limit
        MedvaultError.__init__(
            self,
            f"IPFS object {cid} {size}, over the limit of {limit:,} bytes for {what}; it was not read "
            f"(raise {setting} if such an object is expected)",
        )


class InvalidCidError(MedvaultError, ValueError):
    def __init__(self, value: object, reason: str) -> None:
        self.value, self.reason = value, reason
        super().__init__(f"not a valid CID: {value!r} ({reason})")


class IntegrityError(MedvaultError, ValueError):
    """Data does not match what the chain committed to: it was altered or swapped."""


class CidMismatchError(IntegrityError):
    def __init__(self, expected: str, actual: str) -> None:
        self.expected, self.actual = expected, actual
        super().__init__(f"IPFS returned bytes for {expected} that hash to {actual}: the node served altered data")


class ContentHashMismatchError(IntegrityError):
    def __init__(self, what: str, expected: str, actual: str) -> None:
        self.expected, self.actual = expected, actual
        super().__init__(f"{what}: sha256 {actual} differs from the on-chain content hash {expected}")


class BadRecordError(IntegrityError):
    """Record ``index`` of ``patient``'s log cannot be used (its pointer is not a usable CID, or
    its objects are missing or not what medvault writes); every other record still can."""

    def __init__(self, patient: str, index: int, reason: str) -> None:
        self.patient, self.index, self.reason = patient, index, reason
        super().__init__(f"record {index} of {patient} cannot be used: {reason}")


class DecryptionError(IntegrityError):
    def __init__(self, what: str) -> None:
        super().__init__(f"{what} failed authentication: it was tampered with, or the key or context is wrong")


class UnusableKeyError(IntegrityError):
    """A published encryption key no record key can be wrapped for: malformed, low-order, another suite."""


class AccessDeniedError(MedvaultError, PermissionError):
    def __init__(self, reader: str, patient: str, reason: str) -> None:
        self.reader, self.patient = reader, patient
        super().__init__(f"{reader} may not read records of {patient}: {reason}")


class KeeperRefusedError(AccessDeniedError):
    """Fewer than ``threshold`` keepers released their share; ``reasons`` maps each keeper that
    did not to its (reason, message), e.g. ("expired", "..."), ("unreachable", "...")."""

    def __init__(
        self, reader: str, patient: str, released: int, threshold: int, reasons: dict[str, tuple[str, str]]
    ) -> None:
        self.released, self.threshold, self.reasons = released, threshold, dict(reasons)
        counts: dict[str, int] = {}
        for reason, _ in self.reasons.values():
            counts[reason] = counts.get(reason, 0) + 1
        summary = ", ".join(f"{reason} x{n}" for reason, n in sorted(counts.items(), key=lambda i: (-i[1], i[0])))
        super().__init__(
            reader, patient, f"keepers released {released} of the {threshold} shares needed; keepers refused: {summary}"
        )

    @property
    def reason_codes(self) -> list[str]:
        return sorted(reason for reason, _ in self.reasons.values())


class ContractError(MedvaultError):
    """A contract refused (or would refuse) ``action``; ``name`` and ``arguments`` hold the
    decoded custom error, ``words`` its sentence for people (see ``medvault.chain.refusals``)."""

    def __init__(
        self, action: str, name: str, arguments: dict[str, object] | None = None, *, words: str | None = None
    ) -> None:
        self.action, self.name, self.arguments, self.words = action, name, dict(arguments or {}), words
        detail = ", ".join(f"{k}={v}" for k, v in self.arguments.items())
        super().__init__(words or f"{action} reverted: {name}({detail})")


class SeedError(MedvaultError):
    """Seeding cannot go on (not a dev chain, a transaction failed, ...)."""


class NodeStartError(MedvaultError):
    def __init__(self, what: str, log: Path) -> None:
        tail = log.read_text(errors="replace").strip().splitlines()[-8:] if log.exists() else []
        super().__init__(f"{what} did not start; last lines of {log}:\n" + "\n".join(tail))


class FhirValidationError(MedvaultError, ValueError):
    """A resource is not valid FHIR for its resourceType, or its resourceType is not a FHIR resource."""

    def __init__(self, resource_type: str | None, problem: str) -> None:
        self.resource_type = resource_type
        self.problem = problem
        super().__init__(f"{resource_type or 'resource'} is not valid FHIR R4: {problem}")
