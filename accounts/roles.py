"""The three roles and what each may do.

Roles are Django groups holding permissions; each role includes the one below it, so an expert
can also label and an admin can also review.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ANNOTATOR = "annotator"
    EXPERT = "expert"
    ADMIN = "admin"


# Capabilities are permissions of the `accounts.Capability` content type (codename -> label).
CAPABILITIES: dict[str, str] = {
    "label": "Can label items from the queue",
    "review": "Can review predictions, override consensus and curate",
    "view_all_jobs": "Can see every job, not only one's own",
    "ingest": "Can ingest data",
    "train": "Can start training and inference, and activate models",
    "export": "Can export curated training sets",
    "manage_users": "Can manage users and roles",
    "run_worker_check": "Can start a worker check job",
}

ROLE_CAPABILITIES: dict[Role, tuple[str, ...]] = {
    Role.ANNOTATOR: ("label",),
    Role.EXPERT: ("label", "review", "view_all_jobs"),
    Role.ADMIN: tuple(CAPABILITIES),
}


def perm(capability: str) -> str:
    """The full permission name Django's `has_perm` expects."""
    if capability not in CAPABILITIES:
        raise KeyError(f"unknown capability {capability!r}")
    return f"accounts.{capability}"
