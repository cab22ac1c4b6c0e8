"""The report tests read the session's synced ledger (tests/synced_ledger.py)."""

from __future__ import annotations

from tests.synced_ledger import synced_ledger

__all__ = ["synced_ledger"]
