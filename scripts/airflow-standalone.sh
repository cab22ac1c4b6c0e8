#!/usr/bin/env bash
# `make airflow`: Airflow 3 standalone (api-server, scheduler, dag-processor, triggerer) with the
# runai-ledger DAGs, pointed at a fake Run:ai control plane on 127.0.0.1:8765. Ctrl-C stops both.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
export RUNAI_LEDGER_HOME="${RUNAI_LEDGER_HOME:-$ROOT/.ledger/airflow-standalone}"
export AIRFLOW_HOME="$RUNAI_LEDGER_HOME/airflow"
export AIRFLOW__CORE__DAGS_FOLDER="$ROOT/dags"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__PARALLELISM=4
export AIRFLOW__API__PORT="${AIRFLOW_PORT:-8080}"
# The task supervisor reaches the execution API through this URL, not through api.port: without it a
# non-default port leaves every scheduled task failing against :8080 while the UI shows it running.
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="${AIRFLOW__CORE__EXECUTION_API_SERVER_URL:-http://127.0.0.1:$AIRFLOW__API__PORT/execution/}"
FAKE_PORT="${FAKE_PORT:-8765}"
export AIRFLOW_CONN_RUNAI_DEFAULT="{\"conn_type\": \"http\", \"host\": \"http://127.0.0.1:$FAKE_PORT\", \"login\": \"ledger-demo\", \"password\": \"ledger-demo-secret\", \"extra\": {\"ledger_home\": \"$RUNAI_LEDGER_HOME\"}}"
mkdir -p "$AIRFLOW_HOME"

runai-ledger fake-server --port "$FAKE_PORT" --days 3 &
FAKE_PID=$!
trap 'kill "$FAKE_PID" 2>/dev/null || true' EXIT

airflow db migrate >/dev/null
airflow pools set runai_api 2 "Run:ai control-plane API: bounds concurrent syncs" >/dev/null
echo "Airflow UI: http://127.0.0.1:$AIRFLOW__API__PORT (admin password: $AIRFLOW_HOME/simple_auth_manager_passwords.json.generated)"
echo "Unpause runai_audit_log in the UI, or: airflow dags unpause runai_audit_log"
airflow standalone
