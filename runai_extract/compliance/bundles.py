"""The layout of an export bundle, and checking a bundle on its own (no lake, no warehouse needed).

A bundle is a directory: one file per exported view (``<view>.csv|jsonl|parquet``), a
``manifest.json`` describing the period, the SQL and its parameters, row counts, columns,
coverage and the chain head it was cut from, and ``SHA256SUMS`` covering every other file in the
exact format ``sha256sum -c SHA256SUMS`` reads ("<hex>  <name>" per line, sorted by name).
Checking needs only the directory, so an auditor who received it can run
``runai-ledger verify --bundle DIR`` (or plain ``sha256sum -c``) years later.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Mapping
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from runai_extract.ledger.verify import Problem
from transforms.storage import Lake

MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"
EXTENSIONS = {"csv": "csv", "jsonl": "jsonl", "parquet": "parquet"}


def bundle_file_name(view: str, fmt: str) -> str:
    return f"{view}.{EXTENSIONS[fmt]}"


def manifest_bytes(doc: Mapping[str, Any]) -> bytes:
    """Sorted keys, two-space indent, trailing newline: readable, and the same bytes every time."""
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"


def sums_bytes(files: Mapping[str, bytes]) -> bytes:
    """SHA256SUMS text for ``files`` (name -> content), sorted by name, sha256sum -c compatible."""
    lines = [f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in sorted(files.items())]
    return "".join(lines).encode()


def count_rows(name: str, data: bytes) -> int:
    """Rows in one exported file, read the way its format defines them (CSV records after the header)."""
    if name.endswith(".parquet"):
        return int(pq.ParquetFile(pa.BufferReader(data)).metadata.num_rows)
    text = data.decode("utf-8")
    if name.endswith(".jsonl"):
        return sum(1 for line in text.splitlines() if line.strip())
    records = sum(1 for _ in csv.reader(io.StringIO(text, newline="")))
    return max(records - 1, 0)


def verify_bundle(bundle: Lake) -> list[Problem]:
    """Check SHA256SUMS, that nothing was added or removed, and the manifest's row counts."""
    problems: list[Problem] = []
    sums = bundle.read_bytes(SUMS)
    if sums is None:
        return [Problem("deleted", SUMS, "the bundle has no SHA256SUMS")]
    listed: dict[str, str] = {}
    for number, line in enumerate(sums.decode("utf-8", "replace").splitlines(), start=1):
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64:
            problems.append(Problem("manifest", SUMS, f"line {number} is not '<sha256>  <name>'"))
            continue
        listed[name.lstrip("*")] = digest
    present = {p for p in bundle.list_files("", "") if ".tmp-" not in p}
    for name, digest in sorted(listed.items()):
        data = bundle.read_bytes(name)
        if data is None:
            problems.append(Problem("deleted", name, "listed in SHA256SUMS but missing"))
        elif hashlib.sha256(data).hexdigest() != digest:
            problems.append(Problem("changed", name, "sha256 differs from SHA256SUMS"))
    for name in sorted(present - set(listed) - {SUMS}):
        problems.append(Problem("inserted", name, "not listed in SHA256SUMS"))
    problems.extend(_check_manifest(bundle, listed))
    return problems


def _check_manifest(bundle: Lake, listed: Mapping[str, str]) -> list[Problem]:
    raw = bundle.read_bytes(MANIFEST)
    if raw is None:
        return [] if MANIFEST in listed else [Problem("deleted", MANIFEST, "the bundle has no manifest.json")]
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return [Problem("manifest", MANIFEST, "unreadable JSON")]
    problems = []
    for view in doc.get("views") or []:
        name = str(view.get("file"))
        data = bundle.read_bytes(name)
        if data is None:
            if name in listed:
                continue  # already reported as missing
            problems.append(Problem("deleted", name, "named by manifest.json but missing"))
            continue
        try:
            rows = count_rows(name, data)
        except (ValueError, pa.ArrowException) as exc:
            problems.append(Problem("content", name, f"cannot be read: {exc}"))
            continue
        if rows != view.get("rows"):
            problems.append(
                Problem("content", name, f"holds {rows} rows; manifest.json says {view.get('rows')}")
            )
    return problems
