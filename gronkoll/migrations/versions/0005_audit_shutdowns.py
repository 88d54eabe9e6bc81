"""Nightly shutdowns: the audit log and each machine's result of a shutdown run.

``audit`` is append-only: every command sent, every outcome, every override and every missed
or failed scheduler job, with who did it (``actor``) and why. ``shutdown_results`` has one row
per machine and shutdown run (a policy firing or ``gronkoll shutdown now``): whether it went
off (or, in audit-only mode, whether it was on), why not, and the interval it stayed off,
which the savings report turns into kWh.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# SQLite only makes INTEGER PRIMARY KEY an auto-incrementing rowid; elsewhere 64 bits.
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "audit",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("t", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("policy", sa.String(100)),
        sa.Column("device", sa.String(64)),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("command_id", sa.String(32)),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text()),
        sa.Column("detail", sa.Text()),  # JSON object, or null
        sqlite_autoincrement=True,  # ids only grow: the log's order is its ids' order
    )
    op.create_index("audit_time", "audit", ["t"])
    op.create_index("audit_device", "audit", ["device", "t"])
    op.create_table(
        "shutdown_results",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("policy", sa.String(100)),
        sa.Column("planned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("night", sa.Date(), nullable=False),  # local date of planned_at
        sa.Column("device", sa.String(64), nullable=False),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("group_id", sa.String(64)),
        sa.Column("audit_only", sa.Boolean(), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("reason", sa.String(32)),
        sa.Column("off_at", sa.DateTime(timezone=True)),
        sa.Column("on_at", sa.DateTime(timezone=True)),
        sa.Column("until_at", sa.DateTime(timezone=True)),
        sa.Column("idle_w", sa.Float()),
        sa.Column("off_w", sa.Float()),
        sa.Column("evidence", sa.Text()),  # JSON: the agent's word and the second signal
        sa.UniqueConstraint("run_id", "device", name="shutdown_results_run_device"),
    )
    op.create_index("shutdown_results_night", "shutdown_results", ["night"])


def downgrade() -> None:
    op.drop_index("shutdown_results_night", table_name="shutdown_results")
    op.drop_table("shutdown_results")
    op.drop_index("audit_device", table_name="audit")
    op.drop_index("audit_time", table_name="audit")
    op.drop_table("audit")
