"""codec.memory: memory handed back around large photos (issue 13)."""

from __future__ import annotations

import platform

import numpy as np
import pytest

from codec import memory


class _Model:
    def __init__(self) -> None:
        self.released = 0

    def release_memory(self) -> bool:
        self.released += 1
        return True


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_trim_heap_returns_freed_pages_on_glibc() -> None:
    blocks = [np.ones(1 << 16, np.uint8) for _ in range(2000)]  # ~130 MB in small heap chunks
    del blocks
    assert memory.trim_heap() is True


def test_release_only_around_large_photos() -> None:
    model = _Model()
    assert memory.release_if_large(model, memory.LARGE_PHOTO_PIXELS) is False
    assert model.released == 0
    assert memory.release_if_large(model, memory.LARGE_PHOTO_PIXELS + 1) is True
    assert model.released == 1
    assert memory.release_if_large(model, memory.RELEASE_AFTER_PIXELS + 1, memory.RELEASE_AFTER_PIXELS)
    assert model.released == 2
    assert 768 * 512 <= memory.RELEASE_AFTER_PIXELS < 1224 * 816  # Kodak keeps its buffers, 1 MP not
    memory.release(object())  # a model without engine buffers (torch): only the heap is trimmed
