"""Handing the ledger over: deterministic export bundles and the period-completeness check.

Reads what the ledger recorded (ledger/, warehouse views); may import ledger/, transforms,
warehouse and core; never the streams or cli/.
"""
