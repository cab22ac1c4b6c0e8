"""The dlt baseline: dlt-hub's rest_api source, offset paginator, Parquet to a local filesystem.

Run with the Python of bench/.venv-dlt (its own environment, so dlt's dependencies never touch
ours). Same server, window, page size (numberOfSamples=1000) and sort as ours; the bearer token
comes from the same token POST. Usage: python bench/dlt_audit.py BASE_URL START END OUT_DIR
"""

from __future__ import annotations

import os
import sys

import dlt
import requests
from dlt.sources.rest_api import rest_api_source

PAGE = 1000


def main(base_url: str, start: str, end: str, out_dir: str) -> None:
    body = {
        "grantType": "client_credentials",
        "clientId": "ledger-demo",
        "clientSecret": "ledger-demo-secret",
    }
    token = requests.post(f"{base_url}/api/v1/token", json=body, timeout=60).json()["accessToken"]
    source = rest_api_source(
        {
            "client": {"base_url": f"{base_url}/", "auth": {"type": "bearer", "token": token}},
            "resources": [
                {
                    "name": "audit_log",
                    "endpoint": {
                        "path": "api/v1/audit/log",
                        "params": {"start": start, "end": end, "sortBy": "timestamp", "sortOrder": "asc"},
                        "data_selector": "audit_logs",
                        "paginator": {
                            "type": "offset",
                            "limit": PAGE,
                            "offset_param": "offset",
                            "limit_param": "numberOfSamples",
                            "total_path": "total",
                        },
                    },
                }
            ],
        }
    )
    pipeline = dlt.pipeline(
        pipeline_name="bench_audit",
        pipelines_dir=os.path.join(out_dir, ".dlt-pipelines"),
        destination=dlt.destinations.filesystem(bucket_url=f"file://{os.path.abspath(out_dir)}/data"),
        dataset_name="audit",
    )
    info = pipeline.run(source, loader_file_format="parquet")
    rows = pipeline.last_trace.last_normalize_info.row_counts.get("audit_log", 0)
    print(f"dlt: {rows} rows; {(info.has_failed_jobs and 'FAILED JOBS') or 'ok'}")


if __name__ == "__main__":
    main(*sys.argv[1:5])
