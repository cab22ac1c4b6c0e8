"""Run inside a subprocess whose PYTHONPATH holds one unpacked runapy wheel: validate payloads.

stdin: ``[{"label", "model", "payload", "exact_keys"}]``; stdout: a JSON list of failures
(``label: reason``). ``exact_keys`` also refuses top-level keys the model does not declare
(runapy's models ignore unknown keys, so a key a release never sent would pass unnoticed).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import runai
from runai import models


def _wire_keys(model: Any) -> set[str]:
    return {field.alias or name for name, field in model.model_fields.items()}


def _check(check: dict[str, Any]) -> str | None:
    model = getattr(models, check["model"], None)
    if model is None:
        return f"runapy {runai.__version__} has no model {check['model']}"
    payload = check["payload"]
    if check.get("exact_keys") and isinstance(payload, dict):
        unknown = set(payload) - _wire_keys(model)
        if unknown:
            return f"keys {sorted(unknown)} are not in runapy {runai.__version__} {check['model']}"
    try:
        parsed = model.from_dict(payload)
    except Exception as exc:  # pydantic's ValidationError and friends: report, keep going
        return f"{type(exc).__name__}: {str(exc)[:400]}"
    return None if parsed is not None else "from_dict returned None"


def main() -> None:
    checks = json.load(sys.stdin)
    failures = []
    for check in checks:
        problem = _check(check)
        if problem is not None:
            failures.append(f"{check['label']}: {problem}")
    json.dump({"version": runai.__version__, "checked": len(checks), "failures": failures}, sys.stdout)


if __name__ == "__main__":
    main()
