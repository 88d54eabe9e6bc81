"""MQTT ingestion: quarantined messages and meetings (participants per site, never names).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mqtt_quarantine",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("device_id", sa.String(200)),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("payload_bytes", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False, unique=True),
    )
    op.create_index("mqtt_quarantine_time", "mqtt_quarantine", ["received_at"])
    op.create_index("mqtt_quarantine_device", "mqtt_quarantine", ["device_id", "received_at"])
    op.create_table(
        "meetings",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("room", sa.String(64), nullable=False),
        sa.Column("meeting_id", sa.String(128), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
        sa.Column("participants", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("room", "meeting_id", name="meetings_room_meeting"),
    )


def downgrade() -> None:
    op.drop_table("meetings")
    op.drop_index("mqtt_quarantine_device", table_name="mqtt_quarantine")
    op.drop_index("mqtt_quarantine_time", table_name="mqtt_quarantine")
    op.drop_table("mqtt_quarantine")
