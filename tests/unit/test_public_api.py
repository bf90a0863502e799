"""The public API is ``medvault.__all__``: sorted, complete, library only (httpx's
test_exported_members, in medvault's terms)."""

from __future__ import annotations

import inspect

import medvault
from medvault import errors

# What a caller of the library gets; a change here is a change of the public API.
EXPECTED = {
    "AccessDeniedError", "AccessRequest", "AuditEntry", "BadRecordError", "Category", "Chain", "ChainUnavailableError",
    "CidMismatchError", "ConfigurationError", "ConsentChange", "ContentHashMismatchError", "ContractError",
    "DecryptionError", "Deployment", "EventIndex", "FhirValidationError", "Grant", "GrantReceipt", "GrantTerms",
    "IntegrityError",
    "InvalidCidError", "IpfsClient", "IpfsError", "IpfsUnavailableError", "KeeperRefusedError", "KeeperService",
    "KeeperSet", "KeyBundle", "KeyInfo", "KeyRelease", "KeyRotation", "KeySuite", "Keystore", "KeystoreError",
    "Medvault", "MedvaultError", "NodeStartError", "NodeUnavailableError", "ObjectTooLargeError", "Purpose", "Record",
    "RecordPointer",
    "RecordReceipt", "RequestStatus", "Role", "SeedError", "SignedConsent", "TxResult", "UnknownAccountError",
    "UnusableKeyError", "VerificationReport", "Wallet", "WrongPassphraseError", "connect", "deploy", "verify_patient",
}  # fmt: skip


def test_all_is_sorted_and_has_no_duplicates() -> None:
    assert medvault.__all__ == sorted(set(medvault.__all__))


def test_all_is_exactly_the_public_api() -> None:
    assert set(medvault.__all__) == EXPECTED


def test_every_exported_name_exists() -> None:
    missing = [name for name in medvault.__all__ if not hasattr(medvault, name)]
    assert not missing


def test_every_public_name_of_the_root_is_exported() -> None:
    public = {n for n, v in vars(medvault).items() if not n.startswith("_") and not inspect.ismodule(v)}
    assert public == set(medvault.__all__)


def test_every_error_is_in_errors_and_exported() -> None:
    defined = {
        name
        for name, value in vars(errors).items()
        if inspect.isclass(value) and issubclass(value, errors.MedvaultError) and value.__module__ == errors.__name__
    }
    assert defined == set(errors.__all__)
    assert defined <= set(medvault.__all__)
    # No MedvaultError is defined anywhere but errors.py.
    assert all(getattr(medvault, n).__module__ == errors.__name__ for n in medvault.__all__ if n.endswith("Error"))


def test_the_error_tree_in_the_docstring_names_every_error() -> None:
    assert errors.__doc__ is not None
    assert all(name in errors.__doc__ for name in errors.__all__)


def test_dev_tooling_is_not_exported() -> None:
    assert "LocalNode" not in medvault.__all__
    assert not any(getattr(medvault, n).__module__.startswith("medvault.dev") for n in medvault.__all__)


def test_no_module_defines_an_error_of_its_own() -> None:
    import importlib
    import pkgutil

    elsewhere = []
    for info in pkgutil.walk_packages(medvault.__path__, "medvault."):
        if info.name == errors.__name__:
            continue
        module = importlib.import_module(info.name)
        elsewhere += [
            f"{info.name}.{name}"
            for name, value in vars(module).items()
            if inspect.isclass(value) and issubclass(value, errors.MedvaultError) and value.__module__ == info.name
        ]
    assert not elsewhere, f"errors belong in medvault.errors: {elsewhere}"
