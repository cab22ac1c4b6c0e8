"""A fake NVIDIA Run:ai control plane: a real HTTP server over a seeded, simulated tenant.

Shipped with the product (``runai-ledger fake-server``) so anyone can try the ledger without a
tenant, and used by the test suite as the server the extractor talks to over loopback.

    FakeControlPlane   context manager: uvicorn in a background thread, ``base_url``, request log
    serve_forever      the blocking variant for the CLI
    FakeConfig         seed, size, credentials, ``now``, faults
    FaultConfig        error rate/statuses, Retry-After form, latency, token lifetime,
                       late arrivals, offset drift, and the hostile-server knobs: connection
                       resets, stalls, ignored offset, backwards ``next``, a lying ``total``,
                       non-JSON 200 bodies, corrupt records (badrecords.py)
    TenantSimulator    the tenant's audit stream and the ground truth tests compare against,
                       including which ids are served corrupt and how (``corrupt_ids``); its
                       workloads and org units over simulated time (``sim_now``, ``advance``,
                       ``workload_truth``, ``gpu_hours_truth``, ``org_truth``,
                       ``workload_changes_since``)

Workloads (workloads.py, lifecycle.py, workload_render.py) are shown AS OF ``sim_now``, which
starts at ``now`` and moves only by ``TenantSimulator.advance``; every response carries
``Date: <sim_now>``. Those created before ``now`` are exactly the audit log's successful
workload creates (same id, name, cluster, submitter, millisecond; an audit delete is their
``deletedAt``). Semantics an extractor may rely on: ``allocatedResources.gpu`` is the requested
GPUs while Running and 0 otherwise (constant within a Running interval); ``phaseUpdatedAt`` is
the last phase change, ``updatedAt`` the last change of any kind, ``completedAt`` is set on
Completed/Failed/Stopped and ``deletedAt`` on deletion; ``GET /api/v1/workloads/{id}`` also
returns deleted workloads; history comes in a hash order, not by time.

GPU metrics and consumption reports (gpu_metrics.py, metric_routes.py, cluster_metrics.py,
reports.py) come from the same plans: each workload's utilisation profile (idle notebooks, 8-GPU
jobs using one GPU, busy training), its pods' share of it (pods.py: the pods list and per-pod,
per-GPU series), each org unit's quota over time, cluster and node-pool allocation summed over
their workloads, and reports computed from Running time (``gpu_efficiency_truth``,
``idle_workloads_truth``; ``FakeConfig.report_skew`` makes a report disagree).

Where the real API is silent the fake picks the stricter reading and says so: the audit-log
window is inclusive at BOTH ends (``start <= timestamp <= end``), ties on the sort key are
broken by id, and ``next`` is ``offset + len(page)`` only while more rows remain.
"""

from __future__ import annotations

from runai_extract.fake.config import FakeConfig
from runai_extract.fake.faults import FaultConfig
from runai_extract.fake.requestlog import RequestRecord
from runai_extract.fake.server import FakeControlPlane, serve_forever
from runai_extract.fake.simulator import TenantSimulator

__all__ = [
    "FakeConfig",
    "FakeControlPlane",
    "FaultConfig",
    "RequestRecord",
    "TenantSimulator",
    "serve_forever",
]
