"""A signature's compact form as EIP-2098 spells it (its own test vectors), and durations in
refusals as people write them."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from medvault.client.consent_sig import _signature
from medvault.words import duration

# EIP-2098's examples: the key 0x1234...1234 signing two messages (EIP-191), r and yParityAndS.
KEY = "0x" + "1234567890" * 6 + "1234"
VECTORS = [
    ("Hello World", "68a020a209d3d56c46f38cc50a33f704f4a9a10a59377f8dd762ac66910e9b90",
     "7e865ad05c4035ab5792787d4a0297a43617ae897930a6fe4d822b8faea52064", 27),
    ("It's a small(er) world", "9328da16089fcba9bececa81663203989f2df5fe1faa6291a45381c81bd17f76",
     "939c6d6b623b42da56557e5e734a43dc83345ddfadec52cbe24d0cc64f550793", 28),
]  # fmt: skip


@pytest.mark.parametrize(("message", "r", "y_parity_and_s", "v"), VECTORS, ids=["v 27", "v 28"])
def test_a_compact_signature_decodes_as_eip_2098_says(message: str, r: str, y_parity_and_s: str, v: int) -> None:
    signed = Account.sign_message(encode_defunct(text=message), KEY)
    assert (signed.r, signed.v) == (int(r, 16), v)  # the vector is this key's signature

    assert _signature("0x" + r + y_parity_and_s, "test") == (bytes.fromhex(r), signed.s, v)


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(86400, "1 day"), (90 * 86400, "90 days"), (int(1.5 * 86400), "1.5 days"), (3_000_000 * 86400, "3000000 days"),
     (86400 + 1, "1 day"), (4 * 86400 // 3, "1.33 days"), (7200, "2 hours"), (59, "59 seconds")],
)  # fmt: skip
def test_a_duration_reads_without_an_exponent(seconds: int, words: str) -> None:
    assert duration(seconds) == words
