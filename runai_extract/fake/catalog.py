"""The static shape of the simulated tenant: enumerations, entity kinds, names and reasons.

Everything here is data, so the generator stays a small loop and a new entity kind is one more
:class:`EntityKind` line. Wire values (``entity_type``, URLs, HTTP methods and statuses) follow
the 2.24 spec paths and the audit example (examples/audit_log_page.json).
"""

from __future__ import annotations

from dataclasses import dataclass

# Enumerations exactly as runapy's AuditLog field validators spell them; rows store indexes.
ACTIONS: tuple[str, ...] = ("create", "update", "delete", "sign-in", "sign-out", "reset-password")
CREATE, UPDATE, DELETE, SIGN_IN, SIGN_OUT, RESET_PASSWORD = range(6)
METHODS: tuple[str, ...] = ("GET", "POST", "PUT", "PATCH", "DELETE", "CREATE")
METHOD_CODE = {name: code for code, name in enumerate(METHODS)}
SUBJECT_TYPES: tuple[str, ...] = ("User", "App")
USER, APP = 0, 1
RESULTS: tuple[str, ...] = ("Succeeded", "Failed")


@dataclass(frozen=True)
class EntityKind:
    """One kind of thing an audit row can be about, and how the API addresses it."""

    entity_type: str
    collection_url: str
    weight: float  # share of create/update/delete traffic
    update_method: str = "PUT"
    numeric_ids: bool = False  # org units, rules, roles and pools have numeric ids in 2.24
    cluster_scoped: bool = False  # only these rows carry cluster_name/cluster_id
    create_status: int = 201
    delete_status: int = 200
    has_lifecycle: bool = True  # False: pre-existing and only ever updated (settings)


KINDS: tuple[EntityKind, ...] = (
    EntityKind("project", "/api/v1/org-unit/projects", 8, numeric_ids=True, cluster_scoped=True),
    EntityKind("department", "/api/v1/org-unit/departments", 3, numeric_ids=True, cluster_scoped=True),
    EntityKind("access_rule", "/api/v1/authorization/access-rules", 6, numeric_ids=True),
    EntityKind("role", "/api/v1/authorization/roles", 1, numeric_ids=True),
    EntityKind("user", "/api/v1/users", 3),
    EntityKind("application", "/api/v1/apps", 2, update_method="PATCH"),
    EntityKind("training", "/api/v1/workloads/trainings", 30, "PATCH", False, True, 202, 202),
    EntityKind("workspace", "/api/v1/workloads/workspaces", 20, "PATCH", False, True, 202, 202),
    EntityKind("inference", "/api/v1/workloads/inferences", 10, "PATCH", False, True, 202, 202),
    EntityKind("distributed", "/api/v1/workloads/distributed", 6, "PATCH", False, True, 202, 202),
    EntityKind("cluster", "/api/v1/clusters", 0.1, cluster_scoped=True),
    EntityKind("nodepool", "/api/v1/node-pools", 2, numeric_ids=True, cluster_scoped=True),
    EntityKind("settings", "/api/v1/settings", 2, has_lifecycle=False),
)
KIND_BY_TYPE = {kind.entity_type: kind for kind in KINDS}
WORKLOAD_TYPES = ("training", "workspace", "inference", "distributed")

# Pseudo-entities of authentication rows (entity_type "login", as in the audit example).
LOGIN_TYPE = "login"
TOKEN_URL = "/api/v1/token"
LOGOUT_URL = "/api/v1/logout"

BOOTSTRAP_CLUSTERS = ("gpu-prod-east", "gpu-prod-west", "gpu-dev")
SETTING_KEYS = (
    "tenant.sso.enabled",
    "tenant.session.timeout",
    "workloads.default.priority",
    "workloads.idle.timeout",
    "gpu.overprovisioning.enabled",
    "email.notifications.enabled",
)

FIRST_NAMES = ("jane", "bob", "alice", "omar", "mei", "raj", "sofia", "liam", "noa", "ivan", "yuki", "ana")
LAST_NAMES = ("doe", "smith", "chen", "levi", "patel", "garcia", "kim", "novak", "silva", "mori")
APP_SUBJECTS = ("svc-ingest", "svc-ci", "svc-airflow", "svc-mlflow", "svc-grafana", "svc-backup")
BULK_SUBJECTS = ("svc-ci", "svc-airflow")  # apps that submit workloads in bursts
USER_DOMAIN = "example.com"

NAME_WORDS = (
    "nlp", "vision", "speech", "recsys", "fraud", "search", "robotics", "genai", "ranking",
    "forecast", "ocr", "audio", "safety", "chat", "retrieval", "tabular",
)  # fmt: skip
MODEL_NAMES = ("resnet50", "bert-base", "llama3-8b", "vit-l", "whisper", "t5-xl", "yolov8", "gpt2")
WORKLOAD_VERBS = {"training": "train", "workspace": "ws", "inference": "serve", "distributed": "ddp"}
ROLE_NAMES = ("ML engineer", "Research manager", "Viewer", "L1 researcher", "Department admin")

# Failed rows: status by action, and the metadata reason a reviewer would read.
FAILURE_STATUSES: dict[int, tuple[int, ...]] = {
    CREATE: (400, 403, 409, 409),
    UPDATE: (400, 403, 404, 409),
    DELETE: (403, 404, 409),
    SIGN_IN: (401,),
    SIGN_OUT: (401,),
    RESET_PASSWORD: (400, 404),
}
FAILURE_REASONS: dict[int, str] = {
    400: "validation failed",
    401: "invalid credentials",
    403: "insufficient permissions",
    404: "resource not found",
    409: "resource with this name already exists",
}
