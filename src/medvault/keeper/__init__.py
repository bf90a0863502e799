"""Key-release keepers: the request protocol both sides speak (``protocol``) and the keeper's
service (``service``): checks on chain, releases, journal and receipts."""

from medvault.keeper.service import KeeperService

__all__ = ["KeeperService"]
