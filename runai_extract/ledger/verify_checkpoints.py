"""Where the last clean ``verify`` of a stream left off, so the next one re-hashes only what changed.

Why: a full verify re-reads every data file and every manifest the stream ever wrote, so its cost
grows with the age of the ledger (a year of 15-minute syncs is ~35,000 manifests). After a verify
that found nothing, this module records, per stream, the chain head it proved, and every file the
manifests said must be live with the size and modification time storage reported for it.

The next verify starts from there: it proves the chain from the checkpointed manifest on, re-hashes
only the files that are new or whose size or modification time changed (an edit rewrites the file),
and re-counts only the new manifests' contents. Links of older manifests are still checked (a
cheap pass over three small columns), so a deleted or relinked old manifest is still caught.
What it cannot see is an edit that keeps a file's size and restores its modification time, or an
edit of an old manifest's JSON that keeps its recorded hash: ``verify --full`` re-derives
everything and ignores the checkpoint; run it before handing a ledger to an auditor, and on a
schedule (docs/compliance.md).

The checkpoint is ``_manifests/<stream>/VERIFIED.json`` in the lake (no machine-local state: any
worker continues from it). When a signing key is configured it carries an HMAC, and a checkpoint
with a missing or wrong HMAC is ignored (the verify is then full), so someone who can write the
lake but does not hold the key cannot make a later verify skip a file.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

import orjson

from runai_extract.ledger.manifests import HEAD_DIR, canonical_json
from transforms.storage import Lake

CHECKPOINT_NAME = "VERIFIED.json"
CHECKPOINT_FORMAT = 1


@dataclass(frozen=True)
class Checkpoint:
    """A verified chain head and the files it vouched for: rel path -> manifest entry and stamp."""

    stream: str
    seq: int
    sha256: str
    verified_at: str
    full_at: str  # when the last full verify of this stream passed
    files: dict[str, dict[str, Any]]


def checkpoint_path(stream: str) -> str:
    return f"{HEAD_DIR}/{stream}/{CHECKPOINT_NAME}"


def read_checkpoint(lake: Lake, stream: str, key: bytes | None) -> tuple[Checkpoint | None, str]:
    """The stored checkpoint, or None and why it cannot be used (empty when there is none)."""
    raw = lake.read_bytes(checkpoint_path(stream))
    if raw is None:
        return None, ""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None, "the verify checkpoint is unreadable"
    if not isinstance(doc, dict) or doc.get("format") != CHECKPOINT_FORMAT or doc.get("stream") != stream:
        return None, "the verify checkpoint is from another version or stream"
    if key is not None and doc.get("hmac") != _hmac(doc, key):
        return None, "the verify checkpoint is not signed with this key"
    try:
        return Checkpoint(
            stream=stream,
            seq=int(doc["seq"]),
            sha256=str(doc["sha256"]),
            verified_at=str(doc["verified_at"]),
            full_at=str(doc["full_at"]),
            files={str(k): dict(v) for k, v in dict(doc["files"]).items()},
        ), ""
    except (KeyError, TypeError, ValueError):
        return None, "the verify checkpoint is incomplete"


def write_checkpoint(lake: Lake, checkpoint: Checkpoint, key: bytes | None) -> None:
    """Store ``checkpoint`` (signed when a key is given); a later clean verify overwrites it."""
    doc: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "stream": checkpoint.stream,
        "seq": checkpoint.seq,
        "sha256": checkpoint.sha256,
        "verified_at": checkpoint.verified_at,
        "full_at": checkpoint.full_at,
        "files": checkpoint.files,
    }
    if key is not None:
        doc["hmac"] = _hmac(doc, key)
    lake.write_bytes(checkpoint_path(checkpoint.stream), canonical_json(doc))


def _hmac(doc: dict[str, Any], key: bytes) -> str:
    body = canonical_json({k: v for k, v in doc.items() if k != "hmac"})
    return hmac.new(key, body, hashlib.sha256).hexdigest()
