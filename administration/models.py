"""The administration app's models. Hand-over and retention live in administration.handover."""

from administration.handover.models import (  # noqa: F401
    HandoverDeletion,
    HandoverExport,
    RetentionPolicy,
)
