"""runai-ledger's extraction side: talking to Run:ai and running the pipeline.

The public surface is small on purpose: settings, the error hierarchy and the pipeline entry
points. Airflow is never imported here; dags/ calls into this package.
"""

from __future__ import annotations

__version__ = "0.1.0"
