"""An independent measure of nesting, the oracle for the codecs' depth limits."""

from __future__ import annotations

from typing import Any


def nesting_depth(value: object) -> int:
    """How deeply dicts and lists nest in `value`: 0 for a scalar, 1 for a flat dict or list (even empty)."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest
