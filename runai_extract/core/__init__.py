"""The vocabulary every layer shares: the error hierarchy, settings (and Secret), time values,
the third-party warnings the CLI and the demo silence, and the allocator Arrow uses in the CLI.

Lives at the bottom: it imports nothing of ours, and everything else (transforms and warehouse
included) may import it.
"""
