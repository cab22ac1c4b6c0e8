"""The floor: the least code that moves the same pages into the same typed zstd Parquet.

No retries, no dedupe, no quarantine, no run records, no watermark: GET every page of the
window with httpx, parse with orjson, build a pyarrow table with our AUDIT_EVENTS schema and
stream it into one zstd Parquet file. Whatever ours costs beyond this is the price of its
guarantees. Usage: python bench/floor.py BASE_URL START END OUT_FILE
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import httpx
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from transforms.schemas import AUDIT_EVENTS

PAGE = 1000
ROW_GROUP = 65_536
STRINGS = [f.name for f in AUDIT_EVENTS if f.name not in {"event_id", "event_time", "http_status_code"}]
API_NAMES = {"event_id": "id", "event_time": "timestamp"}


def to_table(items: list[dict[str, object]], ingested_at: datetime) -> pa.Table:
    n = len(items)
    columns: dict[str, pa.Array] = {}
    for field in AUDIT_EVENTS:
        name = field.name
        if name == "event_time":
            text = pa.array([i.get("timestamp") for i in items], pa.string())
            columns[name] = text.cast(field.type)
        elif name == "event_id_derived":
            columns[name] = pa.repeat(pa.scalar(False), n)
        elif name == "ingest_run_id":
            columns[name] = pa.repeat(pa.scalar("floor", pa.string()), n)
        elif name == "ingested_at":
            columns[name] = pa.repeat(pa.scalar(ingested_at, field.type), n)
        elif name == "metadata":
            columns[name] = pa.array([i.get("metadata") for i in items], field.type)
        else:
            columns[name] = pa.array([i.get(API_NAMES.get(name, name)) for i in items], field.type)
    return pa.table(columns, schema=AUDIT_EVENTS)


def main(base_url: str, start: str, end: str, out: str) -> None:
    ingested_at = datetime.now(UTC)
    rows = 0
    buffered: list[dict[str, object]] = []
    with httpx.Client(base_url=base_url, timeout=60) as http:
        body = {
            "grantType": "client_credentials",
            "clientId": "ledger-demo",
            "clientSecret": "ledger-demo-secret",
        }
        token = orjson.loads(http.post("/api/v1/token", json=body).content)["accessToken"]
        headers = {"Authorization": f"Bearer {token}"}
        params: dict[str, str | int] = {"start": start, "end": end, "sortBy": "timestamp", "sortOrder": "asc"}
        with pq.ParquetWriter(out, AUDIT_EVENTS, compression="zstd") as writer:
            offset = 0
            while True:
                page = {**params, "numberOfSamples": PAGE, "offset": offset}
                response = http.get("/api/v1/audit/log", params=page, headers=headers)
                response.raise_for_status()
                items = orjson.loads(response.content)["audit_logs"]
                buffered.extend(items)
                offset += len(items)
                if len(buffered) >= ROW_GROUP or len(items) < PAGE:
                    if buffered:
                        writer.write_table(to_table(buffered, ingested_at), row_group_size=ROW_GROUP)
                    rows += len(buffered)
                    buffered = []
                if len(items) < PAGE:
                    break
    print(f"floor: {rows} rows")


if __name__ == "__main__":
    main(*sys.argv[1:5])
