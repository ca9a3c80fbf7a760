"""Big buffers go back to the operating system once freed, so RSS follows the load down.

glibc serves allocations of 128 KiB and more with mmap, but the first time such a block is
freed it raises that threshold to the block's size (up to 32 MiB); from then on the
buffers of big frames come from the heap, which keeps them, and a burst of big frames
leaves the accumulator at its peak RSS for good. Setting the threshold turns that off.
"""

from __future__ import annotations

import ctypes
import sys

_M_MMAP_THRESHOLD = -3  # glibc's malloc.h
MMAP_THRESHOLD = 128 * 1024


def return_big_buffers() -> bool:
    """Fix glibc's mmap threshold; False where there is no glibc to tell."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
