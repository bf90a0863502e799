"""The off-chain formats, one module each: whoever writes or reads one of them goes through its
module, so the bytes have a single owner (``docs/FORMATS.md`` specifies them; the vectors in
``docs/vectors/`` pin them).

- ``address``: Ethereum addresses as typed or pasted (any case, EIP-55 checked);
- ``envelope``: the record plaintext, a JSON header line then the payload;
- ``keybundle``: the JSON document of a record key's HPKE wraps and keeper escrow shares;
- ``recordhash``: the hash that chains a patient's record log, as ``RecordRegistry`` computes it.
"""
