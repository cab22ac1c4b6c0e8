"""The audit-log stream: window planning, one slice's paging into a file, sync/backfill, recheck.

Where "which window does a run read, and when does the watermark move" is decided. May import
api/, ledger/, transforms, warehouse and core; never usage/, compliance/ or cli/.
"""
