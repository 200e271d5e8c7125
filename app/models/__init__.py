"""All tables; importing this package registers them on Base.metadata."""

from app.models.api_token import ApiToken
from app.models.app_setting import AppSetting
from app.models.arena import ArenaCampaign, Battle, CampaignStatus
from app.models.assignment import Assignment, AssignmentStatus
from app.models.audit_event import AuditEvent
from app.models.base import Base, utcnow
from app.models.completion import Completion
from app.models.dataset_snapshot import DatasetSnapshot
from app.models.judgment import Judgment
from app.models.login_throttle import LoginThrottle
from app.models.model_version import ModelKind, ModelStatus, ModelVersion
from app.models.prompt import Prompt
from app.models.run import FINISHED_RUN_STATUSES, Run, RunKind, RunStatus
from app.models.task import ComparisonTask, TaskCandidate, TaskStatus
from app.models.user import Role, User
from app.models.webhook import (
    DeliveryStatus,
    WebhookDelivery,
    WebhookEndpoint,
    WorkerHeartbeat,
)

__all__ = [
    "ApiToken",
    "FINISHED_RUN_STATUSES",
    "ArenaCampaign",
    "Battle",
    "CampaignStatus",
    "AppSetting",
    "Assignment",
    "AssignmentStatus",
    "AuditEvent",
    "Base",
    "Completion",
    "ComparisonTask",
    "DatasetSnapshot",
    "DeliveryStatus",
    "Judgment",
    "LoginThrottle",
    "ModelKind",
    "ModelStatus",
    "ModelVersion",
    "Prompt",
    "Role",
    "Run",
    "RunKind",
    "RunStatus",
    "TaskCandidate",
    "TaskStatus",
    "User",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WorkerHeartbeat",
    "utcnow",
]
