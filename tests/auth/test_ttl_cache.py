from __future__ import annotations

from llmapi.auth.ttl_cache import TTLCache


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_entries_expire_and_the_oldest_makes_room() -> None:
    clock = Clock()
    cache: TTLCache[str, int] = TTLCache(max_entries=2, clock=clock)
    cache.put("a", 1, ttl=10)
    cache.put("b", 2, ttl=1)
    cache.put("zero", 0, ttl=0)
    assert (cache.get("a"), cache.get("b"), cache.get("zero")) == (1, 2, None)
    clock.now = 1.0
    assert cache.get("b") is None
    cache.put("c", 3, ttl=10)
    cache.put("d", 4, ttl=10)
    assert (cache.get("a"), cache.get("c"), cache.get("d"), len(cache)) == (None, 3, 4, 2)
    cache.evict_where(lambda value: value == 3)
    assert cache.get("c") is None
    cache.clear()
    assert len(cache) == 0
