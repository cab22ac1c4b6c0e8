"""The ledger's own records: watermarks and the writer lock, run records, hash-chained manifests,
verify, coverage and the retention-lag alert.

Shared by every stream; knows the lake but not the API: may import transforms, warehouse and core.
"""
