"""The vocabulary every layer shares: the error hierarchy, settings (and Secret), time values,
and the third-party warnings the CLI and the demo silence.

Lives at the bottom: it imports nothing of ours, and everything else (transforms and warehouse
included) may import it.
"""
