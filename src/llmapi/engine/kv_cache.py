from __future__ import annotations

import torch


class KVCache:
    """Keys and values of every running sequence, one slot (a row) per sequence, for every layer.

    Layout per layer: [slots, kv_heads, length, head_dim]. Both the number of slots and the length grow on
    demand (doubling, up to the limits), so a server configured for 64 slots and 1,024 positions does not
    hold gigabytes while it serves one short request.
    """

    def __init__(
        self,
        *,
        num_layers: int,
        num_kv_heads: int,
        head_dim: int,
        max_slots: int,
        max_length: int,
        dtype: torch.dtype,
    ) -> None:
        if min(num_layers, num_kv_heads, head_dim, max_slots, max_length) < 1:
            raise ValueError("every KV cache dimension must be at least 1")
        self.num_layers = num_layers
        self.num_kv_heads = num_kv_heads
        self.head_dim = head_dim
        self.max_slots = max_slots
        self.max_length = max_length
        self.dtype = dtype
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []

    @property
    def capacity(self) -> tuple[int, int]:
        """(slots, length) currently allocated."""
        if not self.keys:
            return 0, 0
        return self.keys[0].shape[0], self.keys[0].shape[2]

    def ensure(self, slots: int, length: int) -> None:
        """Make room for `slots` rows of `length` positions, keeping what is stored."""
        if slots > self.max_slots or length > self.max_length:
            raise ValueError(
                f"the KV cache holds at most {self.max_slots} slots of {self.max_length} positions; "
                f"{slots} slots of {length} positions were asked for"
            )
        have_slots, have_length = self.capacity
        if slots <= have_slots and length <= have_length:
            return
        new_slots = min(self.max_slots, max(slots, 2 * have_slots))
        new_length = min(self.max_length, max(length, 2 * have_length, 64))
        self.keys = [self._grown(t, new_slots, new_length) for t in self.keys or self._empty_layers()]
        self.values = [self._grown(t, new_slots, new_length) for t in self.values or self._empty_layers()]

    @property
    def allocated_bytes(self) -> int:
        """Memory the keys and values take now."""
        slots, length = self.capacity
        return slots * length * self.bytes_per_position

    @property
    def bytes_per_position(self) -> int:
        """Memory one slot takes per position, keys and values of every layer."""
        return 2 * self.num_layers * self.num_kv_heads * self.head_dim * self.dtype.itemsize

    @torch.inference_mode()  # the layers were made in inference mode, by the model runner's ensure
    def copy_prefix(self, source: int, target: int, length: int) -> None:
        """Copy the first `length` positions of slot `source` into slot `target`, in every layer."""
        self.ensure(max(source, target) + 1, length)
        for layer in (*self.keys, *self.values):
            layer[target, :, :length] = layer[source, :, :length]

    @torch.inference_mode()
    def keep(self, slots: list[int], length: int) -> None:
        """Keep only the first `length` positions of `slots`, which become slots 0, 1, ... in that order;
        the rest of the memory is freed."""
        if not slots or length < 1:
            self.release()
            return
        rows = torch.tensor(slots, dtype=torch.long)
        self.keys = [layer[rows, :, :length] for layer in self.keys]  # indexing copies: the old tensors go
        self.values = [layer[rows, :, :length] for layer in self.values]

    def release(self) -> None:
        """Drop the memory; the next `ensure` allocates again."""
        self.keys = []
        self.values = []

    def _empty_layers(self) -> list[torch.Tensor]:
        shape = (0, self.num_kv_heads, 0, self.head_dim)
        return [torch.empty(shape, dtype=self.dtype) for _ in range(self.num_layers)]

    def _grown(self, old: torch.Tensor, slots: int, length: int) -> torch.Tensor:
        new = torch.zeros((slots, self.num_kv_heads, length, self.head_dim), dtype=self.dtype)
        new[: old.shape[0], :, : old.shape[2]] = old
        return new
