-- Compare: one request, one generation per model, one shared status message.
CREATE TABLE compare_groups (
    id             text PRIMARY KEY,
    session_id     bigint NOT NULL REFERENCES sessions (id),
    platform       text NOT NULL,
    models         text[] NOT NULL,
    cost           bigint NOT NULL,
    status_message jsonb,
    finisher       text,
    finish_until   timestamptz,
    composite_key  text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz
);
CREATE INDEX compare_groups_open ON compare_groups (created_at) WHERE finished_at IS NULL;
