"""Device status from the poller: profile and why, poll time and duration, problems.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("device_status") as batch:
        batch.add_column(sa.Column("last_poll_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("last_duration_s", sa.Float()))
        batch.add_column(sa.Column("profile", sa.String(64)))
        batch.add_column(sa.Column("profile_reason", sa.Text()))
        batch.add_column(sa.Column("problems", sa.Text()))
        batch.add_column(sa.Column("last_problem", sa.Text()))
        batch.add_column(sa.Column("last_problem_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("device_status") as batch:
        for name in (
            "last_problem_at",
            "last_problem",
            "problems",
            "profile_reason",
            "profile",
            "last_duration_s",
            "last_poll_at",
        ):
            batch.drop_column(name)
