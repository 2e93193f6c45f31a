"""Sizes of the stored values, shared by the SQL schema and the snapshot checks.

Every store kind keeps to them, so that a state held in one kind, or a backup of it,
can move to any other. The in-memory store has no limit of its own.
"""

from __future__ import annotations

# INTEGER columns: resource ids, durations, quantities and priorities.
MAX_INTEGER = 2**31 - 1
# BIGINT columns: fencing tokens, queue sequences and counters.
MAX_BIG_INTEGER = 2**63 - 1
# String columns.
ID_LENGTH = 64
NAME_LENGTH = 512
TAG_LENGTH = 256
