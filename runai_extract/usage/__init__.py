"""The usage streams: workloads (changes, history, events) and org units as versioned dimensions.

Live lists rather than time windows (docs/usage.md). May import api/, ledger/, transforms,
warehouse and core; never audit/, compliance/ or cli/.
"""
