"""MQTT delivery: the redelivery journal and each device's MQTT activity.

``mqtt_seen`` keeps, per MQTT session, a key (a hash of packet id, topic and payload) of the
newest messages taken from the broker and the time each was first received: a message the
broker sends again after a crash or a reconnect is read again as of that first time, so its
readings are the same and are stored once. Rows are only appended (and the oldest deleted), so
the table needs no index on the key: the collector keeps its session's keys in memory. ``device_status`` gains each device's MQTT activity.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# SQLite only makes INTEGER PRIMARY KEY an auto-incrementing rowid; elsewhere 64 bits.
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "mqtt_seen",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("session", sa.String(255), nullable=False),  # client id @ broker
        sa.Column("key", sa.BigInteger(), nullable=False),
        sa.Column("received_ms", sa.BigInteger(), nullable=False),
        sqlite_autoincrement=True,  # ids only grow: a session's newest keys have its highest ids
    )
    op.create_index("mqtt_seen_session", "mqtt_seen", ["session", "id"])
    with op.batch_alter_table("device_status") as batch:
        batch.add_column(sa.Column("mqtt_messages", sa.BigInteger()))
        batch.add_column(sa.Column("mqtt_quarantined", sa.BigInteger()))
        batch.add_column(sa.Column("mqtt_last_message_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("mqtt_last_topic", sa.Text()))


def downgrade() -> None:
    with op.batch_alter_table("device_status") as batch:
        for name in (
            "mqtt_last_topic",
            "mqtt_last_message_at",
            "mqtt_quarantined",
            "mqtt_messages",
        ):
            batch.drop_column(name)
    op.drop_index("mqtt_seen_session", table_name="mqtt_seen")
    op.drop_table("mqtt_seen")
