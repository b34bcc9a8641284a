"""hookd's tables. The migrations in `migrations/versions` create exactly these."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    text,
)

from hookd.domain.states import CLAIMABLE, DeliveryState

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets 64-bit keys.
Id = BigInteger().with_variant(Integer(), "sqlite")


def in_list(states: tuple[DeliveryState, ...]) -> str:
    """`('pending', 'retrying')`: states written into a statement's text, so that the planner
    can match it with the partial index on claimable deliveries (a bound parameter would not)."""
    return "(" + ", ".join(f"'{state.value}'" for state in states) + ")"


CLAIMABLE_STATES = in_list(CLAIMABLE)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("username", String(150), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("role", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    # When an operator disabled the account (it cannot log in); null while it is enabled.
    Column("disabled_at", BigInteger),
)

tokens = Table(
    "tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("expires_at", Float, nullable=False),
)

repositories = Table(
    "repositories",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("name", Text, nullable=False),
    Column("base_uri", Text),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

repository_events = Table(
    "repository_events",
    metadata,
    Column("repository_id", ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True),
    Column("id", String(200), primary_key=True),
    Column("name", Text, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("blocking", Boolean, nullable=False, server_default=text("false")),
)

webhooks = Table(
    "webhooks",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    # The dialect that created the webhook; each dialect sees only its own.
    Column("dialect", String(20), nullable=False),
    Column("public_id", String(36), unique=True),
    Column("url", Text, nullable=False),
    Column("secret", Text),
    Column("status", String(16), nullable=False),
    Column("timeout_ms", Integer, nullable=False),
    Column("headers", Text, nullable=False, server_default="{}"),
    Column("description", Text, nullable=False, server_default=""),
    Column("max_retries", Integer, nullable=False),
    Column("bearer_token", Text),
    Column("categories", Text),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("disabled_reason", Text),
    Column("failing_since", Float),
    # Delivery controls: deliveries per second (all workers together), and publish order.
    Column("rate_limit", Integer),
    Column("ordering", String(8), nullable=False, server_default="none"),
    # The secret before the last rotation, sealed like `secret`, signed with until this time.
    Column("previous_secret", Text),
    Column("previous_secret_until", Float),
    # Failed attempts in a row; set while the webhook is suspended: when its next probe may go.
    Column("failures", Integer, nullable=False, server_default="0"),
    Column("probe_at", Float),
    # The rate limit's schedule: when the next delivery may start (all workers together).
    Column("rate_next_at", Float),
    # Where a fifo claim starts looking for the webhook's next delivery, in id order: the last
    # head taken, or a delivery queued again by hand (store/queue.py says why this is safe).
    Column("fifo_from", Id, nullable=False, server_default="0"),
    # A deleted webhook's uid is never handed out again (PostgreSQL's sequence does the same).
    sqlite_autoincrement=True,
)

# A repository-dialect webhook's own fields, beside its core row.
repository_webhooks = Table(
    "repository_webhooks",
    metadata,
    Column("webhook_id", ForeignKey("webhooks.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "repository_id",
        ForeignKey("repositories.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("uri", Text, nullable=False),
    Column("handle_response", String(20), nullable=False),
)

# What a webhook subscribes to: an event type (a dialect may make up its own, such as
# `<repoId>/<eventId>`).
webhook_topics = Table(
    "webhook_topics",
    metadata,
    Column("webhook_id", ForeignKey("webhooks.id", ondelete="CASCADE"), primary_key=True),
    Column("topic", String(300), primary_key=True),
    Column("position", Integer, nullable=False),
    Index(None, "topic"),
)

events = Table(
    "events",
    metadata,
    Column("seq", Id, primary_key=True, autoincrement=True),
    Column("id", String(255), nullable=False),
    Column("idempotency_key", String(255), unique=True),
    Column("type", String(300), nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("deliveries", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    # Finding an event by its id (the console's search) without a scan.
    Index(None, "id"),
)

# Deliveries and attempts carry no foreign keys: their checks doubled the cost of writing a
# publish's deliveries on PostgreSQL (docs/performance.md). The store keeps them consistent
# instead: deliveries are written with their events, and deleted with their webhook or event.
#
# A delivery's `due_at` is when it may next be claimed: for a `delivering` row that is the end of
# its lease, so one partial index serves new, retrying and abandoned deliveries alike. The index
# leads with the webhook, because claims take a share from each webhook with due deliveries.
# `due_at` of a claimed delivery is also the claim's fencing token: an outcome is recorded only
# while the row still carries the lease its worker was given.

_claimable = text(f"state IN {CLAIMABLE_STATES}")

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("event_seq", Id, nullable=False, index=True),
    Column("webhook_id", Id, nullable=False),
    Column("state", String(12), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("due_at", Float, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("last_status_code", Integer),
    Column("last_error", Text),
    # A retry asked for while an attempt was in flight: applied when that attempt is recorded.
    Column("retry_requested", Boolean, nullable=False, server_default=text("false")),
    Index(
        "ix_deliveries_due",
        "webhook_id",
        "due_at",
        postgresql_where=_claimable,
        sqlite_where=_claimable,
    ),
    # A webhook's deliveries in publish order: its log, and a fifo claim's walk to its next.
    Index(None, "webhook_id", "id"),
    # Ids are never handed out again (SQLite would reuse the highest after a delete).
    sqlite_autoincrement=True,
)

attempts = Table(
    "attempts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("delivery_id", Id, nullable=False),
    Column("number", Integer, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("duration_ms", Float, nullable=False),
    Column("status_code", Integer),
    Column("response_body", Text),
    Column("error", Text),
    Index(None, "delivery_id"),
    sqlite_autoincrement=True,
)

# Upper bounds (ms) of the attempt-latency histogram's buckets; one more bucket holds the rest.
LATENCY_BOUNDS_MS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000)
LATENCY_COLUMNS = (*(f"ms_{bound}" for bound in LATENCY_BOUNDS_MS), "ms_more")

# Attempts counted per minute as their outcomes are recorded: what the console's overview
# charts, read without touching the delivery log. Writers add to one of a few shards of each
# minute, so that concurrent workers do not queue on one row.
delivery_stats = Table(
    "delivery_stats",
    metadata,
    Column("minute", BigInteger, primary_key=True),  # Unix time // 60
    Column("shard", Integer, primary_key=True),
    Column("attempts", BigInteger, nullable=False),
    Column("answered_2xx", BigInteger, nullable=False),
    Column("exhausted", BigInteger, nullable=False),  # deliveries that ended `failed`
    # How many attempts took at most each bound (and more than the one before).
    *(Column(name, BigInteger, nullable=False) for name in LATENCY_COLUMNS),
)

# The salts of the keys that seal secrets at rest, one per seal version (see `secret_box.py`).
keyring = Table(
    "keyring",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("salt", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

# The device dialect's event types beyond its built-in ones, in creation order.
event_types = Table(
    "event_types",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("description", Text, nullable=False, server_default=""),
    Column("created_at", BigInteger, nullable=False),
    sqlite_autoincrement=True,
)

# Producers' API keys: only a digest of each key is kept, and its first characters for display.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    # A JSON array of the types (or wildcards) the key may publish; null: any.
    Column("event_types", Text),
    Column("created_at", BigInteger, nullable=False),
    # A revoked key's id is never handed out again: it names the key's producer.
    sqlite_autoincrement=True,
)
