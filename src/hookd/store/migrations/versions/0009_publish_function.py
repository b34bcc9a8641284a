r"""publishing from SQL: `publish(type, data, id)` and `publish_many(events)` (PostgreSQL)

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-07 03:00:00

A producer's own transaction publishes through these functions, so its events commit or roll
back with its data; a table trigger can call them too. They write what an HTTP publish in the
device dialect writes: the event with the same body (`{"id", "type", "created_at", "data"}`),
its idempotency key (the id, scoped to the producer `sql` and the dialect `device`), one
`pending` delivery per active webhook subscribed to the type or to a wildcard `P.*` of it, and
the workers' wake-up (`pg_notify`, delivered at commit). A bad event raises SQLSTATE 22023,
which aborts the caller's transaction like a broken constraint.

`publish` and `publish_many` run with the rights of hookd's role (SECURITY DEFINER): a producer's
role needs no rights on hookd's tables, only EXECUTE on them (and USAGE on the schema), which
nobody has until granted.

The functions live in the schema the migration runs in (HOOKD_DATABASE_SCHEMA) and fix their
own search_path, so they work from any. SQLite has no functions: there, `hookd.publish` writes
the same rows from Python.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# The device dialect's 41 event types, as of this revision.
_DEVICE_TYPES = (
    "log.access_denied_by_not_valid_identifier",
    "log.access_denied_by_not_valid_face_identifier",
    "log.access_denied_by_not_valid_input_code",
    "log.access_denied_by_remote_server_api_call",
    "log.access_denied_by_unknown_card",
    "log.access_granted_by_api_call",
    "log.access_granted_by_call_host",
    "log.access_granted_by_master_code",
    "log.access_granted_by_remote_server_api_call",
    "log.access_granted_by_valid_identifier",
    "log.door_was_closed",
    "log.door_sensor_was_closed",
    "log.door_was_opened",
    "log.door_sensor_was_opened",
    "log.emergency_lock_is_opened",
    "log.lock_is_opened_to_long",
    "log.lock_was_opened_by_exit_btn",
    "log.lock_was_opened_by_free_access_button",
    "log.incoming_call",
    "log.outgoing_call",
    "log.outgoing_call_missed",
    "log.device_booted",
    "log.sip_registration_lost",
    "log.outgoing_call_web",
    "log.incorrect_login_api_call",
    "log.incorrect_login_gui_settings",
    "log.successful_login_api_call",
    "log.successful_login_gui_settings",
    "log.door_was_not_closed_too_long",
    "log.tamper_event",
    "log.multi_access_granted",
    "log.identifiers_without_linkage_to_user_access_denied",
    "log.multi_access_denied",
    "log.access_denied_by_unknown_qr",
    "log.access_denied_unknown_identifier",
    "log.lift_call_success",
    "log.lift_call_error",
    "log.lift_module_access_error",
    "log.access_granted_by_shared_identifier",
    "log.access_denied_by_not_valid_shared_identifier",
    "log.bond_lift_request",
)
_TYPES_ARRAY = "ARRAY[" + ", ".join(f"'{name}'" for name in _DEVICE_TYPES) + "]"

# HOOKD_MAX_EVENT_BYTES's default.
_MAX_EVENT_BYTES = 1024 * 1024
# publishing.idempotency_key's scope for these events: producer `sql`, dialect `device`.
_KEY_SCOPE = (
    r"convert_to('sql', 'UTF8') || '\x00'::bytea || convert_to('device', 'UTF8') || '\x00'::bytea"
)

# The helpers below use built-in functions only and fix no search_path, so that the planner
# inlines them into the statements of `publish_many`.

# Why an event cannot be published, or NULL. The type check is the last `OR` list to extend
# when more types become publishable.
_PROBLEM = r"""
CREATE FUNCTION @schema.publish_problem(type text, data jsonb, id text) RETURNS text
LANGUAGE sql STABLE AS $function$
SELECT CASE
    WHEN $1 IS NULL THEN 'type: is required'
    WHEN $1 !~ '^[a-z0-9_]+(\.[a-z0-9_]+)+$'
        THEN format('type: %L is not an event type name (lowercase words joined by dots)', $1)
    WHEN $1 LIKE 'hookd.%' THEN format('type: %L is hookd''s own event type', $1)
    WHEN NOT ($1 = ANY (@types) OR EXISTS (SELECT 1 FROM @schema.event_types WHERE name = $1))
        THEN format('type: %L is not a known event type', $1)
    WHEN jsonb_typeof($2) NOT IN ('object', 'null') THEN 'data: must be a JSON object'
    WHEN $3 IS NOT NULL AND (length($3) NOT BETWEEN 1 AND 255 OR $3 ~ '[^\x20-\x7e]')
        THEN 'id: must be 1 to 255 printable ASCII characters'
END
$function$
"""

_BODY = r"""
CREATE FUNCTION @schema.event_body(id text, type text, created_at text, data jsonb) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $function$
SELECT convert_to('{"id":' || to_json($1)::text || ',"type":' || to_json($2)::text
    || ',"created_at":"' || $3 || '","data":' || $4::text || '}', 'UTF8')
$function$
"""

_KEY = r"""
CREATE FUNCTION @schema.event_key(id text) RETURNS text
LANGUAGE sql IMMUTABLE AS $function$
SELECT 'k:' || encode(sha256(@key_scope || convert_to($1, 'UTF8')), 'hex')
$function$
"""

# The topics a webhook subscribes to that match an event type: itself, and `P.*` for every
# prefix P of it (`a.b.c`: `a.*`, `a.b.*`).
_TOPICS = r"""
CREATE FUNCTION @schema.event_topics(type text) RETURNS text[]
LANGUAGE sql IMMUTABLE AS $function$
SELECT array_prepend($1, ARRAY(
    SELECT array_to_string((string_to_array($1, '.'))[1:n], '.') || '.*'
    FROM generate_series(1, cardinality(string_to_array($1, '.')) - 1) AS n
))
$function$
"""

_PUBLISH_MANY = r"""
CREATE FUNCTION @schema.publish_many(items jsonb) RETURNS text[]
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = @schema, pg_temp AS $function$
DECLARE
    stamp timestamptz := clock_timestamp();
    now_at double precision := extract(epoch FROM stamp);
    created text := to_char(stamp AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"');
    bad_n bigint;
    bad_problem text;
    ids text[];
    queued_count bigint;
BEGIN
    IF items IS NULL OR jsonb_typeof(items) <> 'array' THEN
        RAISE EXCEPTION 'hookd: cannot publish: events must be a JSON array of objects'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- A key used more than 24 h ago is free again (as in store/events.py).
    UPDATE events SET idempotency_key = NULL
    WHERE idempotency_key = ANY (ARRAY(
        SELECT event_key(x.e ->> 'id') FROM jsonb_array_elements(items) AS x(e)))
      AND created_at < now_at - 86400;

    -- One statement: check every event, and store them only when all are good.
    WITH parsed AS MATERIALIZED (
        SELECT x.n, x.e ->> 'type' AS type, x.e ->> 'id' AS given_id,
               coalesce(nullif(x.e -> 'data', 'null'), '{}') AS data, CASE
            WHEN jsonb_typeof(x.e) <> 'object' THEN 'must be an object {"type", "data"?, "id"?}'
            WHEN x.e - ARRAY['type', 'data', 'id'] <> '{}'::jsonb THEN format(
                '%s: is not a field of an event',
                (SELECT min(k) FROM jsonb_object_keys(x.e - ARRAY['type', 'data', 'id']) AS k))
            WHEN jsonb_typeof(x.e -> 'type') IS DISTINCT FROM 'string'
                THEN 'type: is required and must be a string'
            WHEN jsonb_typeof(x.e -> 'id') NOT IN ('string', 'null') THEN 'id: must be a string'
            ELSE publish_problem(x.e ->> 'type', nullif(x.e -> 'data', 'null'), x.e ->> 'id')
        END AS problem
        FROM jsonb_array_elements(items) WITH ORDINALITY AS x(e, n)
    ), input AS MATERIALIZED (
        SELECT p.n, p.type, p.given_id, event.id, event_key(p.given_id) AS key, event.body,
               coalesce(p.problem, CASE WHEN octet_length(event.body) > @max_bytes
                   THEN 'the event is larger than @max_bytes bytes' END) AS problem
        FROM parsed AS p
        CROSS JOIN LATERAL (
            SELECT coalesce(p.given_id, 'evt_' || replace(gen_random_uuid()::text, '-', '')) AS id
        ) AS named
        CROSS JOIN LATERAL (
            SELECT named.id, CASE WHEN p.problem IS NULL
                THEN event_body(named.id, p.type, created, p.data) END AS body
        ) AS event
    ), rejected AS MATERIALIZED (
        SELECT n, problem FROM input WHERE problem IS NOT NULL ORDER BY n LIMIT 1
    ), known AS MATERIALIZED (
        -- Looked up through the unique index, however large the table.
        SELECT e.idempotency_key AS key FROM events AS e
        WHERE e.idempotency_key = ANY (ARRAY(SELECT key FROM input WHERE key IS NOT NULL))
    ), fresh AS MATERIALIZED (
        -- Each event without an id, and the first with each id not published yet.
        SELECT d.n, d.type, d.id, d.key, d.body, nextval('events_seq_seq') AS seq
        FROM (
            SELECT i.*, row_number() OVER (PARTITION BY i.key ORDER BY i.n) AS nth FROM input AS i
        ) AS d
        WHERE NOT EXISTS (SELECT FROM rejected) AND (d.key IS NULL OR (
            d.nth = 1 AND NOT EXISTS (SELECT FROM known AS k WHERE k.key = d.key)))
    ), subscribers AS MATERIALIZED (
        SELECT t.type, hook.id AS webhook_id
        FROM (SELECT DISTINCT type FROM fresh) AS t
        CROSS JOIN LATERAL (
            SELECT DISTINCT w.id
            FROM webhook_topics AS topic JOIN webhooks AS w ON w.id = topic.webhook_id
            WHERE topic.topic = ANY (event_topics(t.type))
              AND w.status = 'active' AND w.dialect = 'device' AND w.categories IS NULL
        ) AS hook
    ), stored AS (
        INSERT INTO events (seq, id, idempotency_key, type, body, deliveries, created_at)
        SELECT f.seq, f.id, f.key, f.type, f.body,
               (SELECT count(*) FROM subscribers AS s WHERE s.type = f.type), now_at
        FROM fresh AS f
        ORDER BY f.n
        -- Another transaction published the same id meanwhile: that one counts.
        ON CONFLICT (idempotency_key) DO NOTHING
        RETURNING seq, type
    ), queued AS (
        INSERT INTO deliveries (event_seq, webhook_id, state, due_at, created_at, updated_at)
        SELECT stored.seq, s.webhook_id, 'pending', now_at, now_at, now_at
        FROM stored JOIN subscribers AS s ON s.type = stored.type
        ORDER BY stored.seq, s.webhook_id
        RETURNING 1
    )
    SELECT (SELECT array_agg(i.id ORDER BY i.n) FROM input AS i),
           (SELECT count(*) FROM queued),
           (SELECT n FROM rejected),
           (SELECT problem FROM rejected)
    INTO ids, queued_count, bad_n, bad_problem;

    IF bad_problem IS NOT NULL THEN
        RAISE EXCEPTION 'hookd: cannot publish event [%]: %', bad_n - 1, bad_problem
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    IF queued_count > 0 THEN
        PERFORM pg_notify('hookd_deliveries', '');
    END IF;
    RETURN coalesce(ids, '{}');
END
$function$
"""

_PUBLISH = r"""
CREATE FUNCTION @schema.publish(type text, data jsonb, id text DEFAULT NULL) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = @schema, pg_temp AS $function$
DECLARE
    problem text := publish_problem($1, $2, $3);
BEGIN
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'hookd: cannot publish: %', problem
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN (publish_many(
        jsonb_build_array(jsonb_build_object('type', $1, 'data', $2, 'id', $3))))[1];
END
$function$
"""

_FUNCTIONS = (_PROBLEM, _BODY, _KEY, _TOPICS, _PUBLISH_MANY, _PUBLISH)
_SIGNATURES = (
    "publish(text, jsonb, text)",
    "publish_many(jsonb)",
    "event_topics(text)",
    "event_key(text)",
    "event_body(text, text, text, jsonb)",
    "publish_problem(text, jsonb, text)",
)


def _sql(template: str, schema: str) -> str:
    return (
        template.replace("@schema", schema)
        .replace("@types", _TYPES_ARRAY)
        .replace("@max_bytes", str(_MAX_EVENT_BYTES))
        .replace("@key_scope", _KEY_SCOPE)
    )


def _schema() -> str | None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return None
    name = bind.execute(sa.text("SELECT current_schema()")).scalar_one()
    return '"' + str(name).replace('"', '""') + '"'


def upgrade() -> None:
    schema = _schema()
    if schema is None:
        return
    for function in _FUNCTIONS:
        op.get_bind().exec_driver_sql(_sql(function, schema))
    for signature in _SIGNATURES:  # only roles granted EXECUTE publish (see the README)
        op.get_bind().exec_driver_sql(
            f"REVOKE EXECUTE ON FUNCTION {schema}.{signature} FROM PUBLIC"
        )


def downgrade() -> None:
    schema = _schema()
    if schema is None:
        return
    for signature in _SIGNATURES:
        op.get_bind().exec_driver_sql(f"DROP FUNCTION {schema}.{signature}")
