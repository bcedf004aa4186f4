from __future__ import annotations

from collections.abc import Sequence as TokenIds
from dataclasses import dataclass

DEFAULT_BLOCK_SIZE = 16


@dataclass(frozen=True, slots=True)
class PrefixMatch:
    """Slot `slot` holds the keys and values of the first `length` tokens of a prompt."""

    slot: int
    length: int


class PrefixCache:
    """Which tokens each KV cache slot holds, found by content.

    Every slot's tokens are cut into blocks of `block_size`, each named by a hash chained over the blocks
    before it, so a block's hash names the whole prefix that ends with it. A lookup walks a prompt's blocks
    to the last one some slot holds, then checks the tokens themselves (a hash collision never reuses the
    wrong keys) and extends the match token by token past that block.
    """

    def __init__(self, block_size: int = DEFAULT_BLOCK_SIZE) -> None:
        if block_size < 1:
            raise ValueError("block_size must be at least 1")
        self.block_size = block_size
        self._tokens: dict[int, list[int]] = {}  # slot -> the tokens whose keys and values it holds
        self._hashes: dict[int, list[int]] = {}  # slot -> chained hashes of its full blocks
        self._holders: dict[int, dict[int, None]] = {}  # block hash -> slots holding that prefix

    @property
    def slots(self) -> list[int]:
        return list(self._tokens)

    def tokens(self, slot: int) -> list[int]:
        return self._tokens.get(slot, [])

    def store(self, slot: int, token_ids: TokenIds[int]) -> None:
        """Record that `slot` holds exactly `token_ids` (at positions 0, 1, ...) from now on."""
        tokens = list(token_ids)
        old = self._hashes.get(slot, [])
        new = self._chained_hashes(tokens)
        kept = common_length(old, new)
        for block_hash in old[kept:]:
            self._drop_holder(block_hash, slot)
        for block_hash in new[kept:]:
            self._holders.setdefault(block_hash, {})[slot] = None
        self._tokens[slot] = tokens
        self._hashes[slot] = new

    def forget(self, slot: int) -> None:
        """The slot's contents are about to be overwritten (or are unknown): it is no longer a source."""
        for block_hash in self._hashes.pop(slot, []):
            self._drop_holder(block_hash, slot)
        self._tokens.pop(slot, None)

    def clear(self) -> None:
        self._tokens.clear()
        self._hashes.clear()
        self._holders.clear()

    def renumber(self, slots: dict[int, int]) -> None:
        """Move the records of the slots in `slots` (old -> new number); every other record is dropped."""
        kept = {new: self._tokens[old] for old, new in slots.items() if old in self._tokens}
        self.clear()
        for slot, tokens in kept.items():
            self.store(slot, tokens)

    def find(self, token_ids: TokenIds[int]) -> list[PrefixMatch]:
        """The slots holding the longest cached prefix of `token_ids` (at least one block), longest first."""
        candidates: dict[int, None] = {}
        for block_hash in self._chained_hashes(token_ids):
            holders = self._holders.get(block_hash)
            if not holders:
                break
            candidates = holders
        matches = [PrefixMatch(slot, common_length(self._tokens[slot], token_ids)) for slot in candidates]
        matches = [m for m in matches if m.length >= self.block_size]
        return sorted(matches, key=lambda m: m.length, reverse=True)

    def _chained_hashes(self, tokens: TokenIds[int]) -> list[int]:
        size = self.block_size
        hashes: list[int] = []
        previous = 0
        for end in range(size, len(tokens) + 1, size):
            previous = hash((previous, tuple(tokens[end - size : end])))
            hashes.append(previous)
        return hashes

    def _drop_holder(self, block_hash: int, slot: int) -> None:
        holders = self._holders.get(block_hash)
        if holders is None:
            return
        holders.pop(slot, None)
        if not holders:
            del self._holders[block_hash]


def common_length(a: TokenIds[int], b: TokenIds[int]) -> int:
    """How many leading items `a` and `b` share."""
    length = min(len(a), len(b))
    for i in range(length):
        if a[i] != b[i]:
            return i
    return length
