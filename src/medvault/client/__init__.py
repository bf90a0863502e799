"""The medvault client: participants, encrypted records and consent, end to end.

``Medvault`` is one object over one deployment and one IPFS node, composed of one class per
capability, each in its own module and readable top-down in the order data moves:

- ``participants``: encryption keys on chain, accreditation;
- ``access``: the access policy (``can_read``, ``grant_of``, ``access_denial``), shared with the keepers;
- ``keepers``: choosing keepers, asking them for a record key, their receipts;
- ``records``: write, list and read records; key rotation;
- ``consent``: grants, revocations, delegates, research requests, emergency access, signatures;
- ``audit``: a patient's history from chain events.

Keys and rotation: an account's encryption key of epoch N is a random pair sealed in its key file
(``medvault.accounts``); the chain stores the hash of the one it published, and the client
finds it among the held pairs by comparing. ``rotate_key`` generates the next epoch's pair,
publishes it and re-wraps the keys of the patient's records for it in one bundle, announced with
``shareKeys``. Records written from then on are wrapped for the new key only, so the old key
opens nothing new. A reader unwraps with its newest key first, then with its earlier ones.
``migrate_keys`` moves an account of the old, signature-derived scheme to a random key.

Keepers: a patient may name key-release keepers (``set_keepers``). Each record written from
then on also escrows its key t-of-n among them (the "escrow" of its key bundle); a reader whom
the chain lets read but who holds no wrap (a grant made by a delegate, say) asks the keepers,
who each check consent on chain before releasing their share (``medvault.keeper``), and post a
``KeyReleased`` receipt for it (``releases``).
"""

from __future__ import annotations

from medvault.client.audit import Audit
from medvault.client.consent import Consent

__all__ = ["Medvault"]


class Medvault(Consent, Audit):
    """Participants, records and consent on one deployment, with one IPFS node."""
