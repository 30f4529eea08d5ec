-- Easel's data model (DESIGN.md, "Data model"). Constraints carry the invariants.

CREATE TYPE generation_status AS ENUM
    ('queued', 'running', 'waiting', 'succeeded', 'failed', 'cancelled');
CREATE TYPE generation_stage AS ENUM
    ('received', 'understanding', 'refining_prompt', 'generating', 'uploading', 'finalizing', 'done');
CREATE TYPE reservation_status AS ENUM ('pending', 'confirmed', 'released');
CREATE TYPE ledger_kind AS ENUM ('grant', 'deduct', 'reserve', 'confirm', 'release');

CREATE TABLE users (
    id           bigserial PRIMARY KEY,
    platform     text NOT NULL,
    workspace    text NOT NULL DEFAULT '',
    external_id  text NOT NULL,
    display_name text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (platform, workspace, external_id)
);

-- granted = available + reserved + spent, all >= 0: enforced on every write.
CREATE TABLE accounts (
    user_id    bigint PRIMARY KEY REFERENCES users (id),
    granted    bigint NOT NULL DEFAULT 0 CHECK (granted >= 0),
    available  bigint NOT NULL DEFAULT 0 CHECK (available >= 0),
    reserved   bigint NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    spent      bigint NOT NULL DEFAULT 0 CHECK (spent >= 0),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT accounts_balance CHECK (granted = available + reserved + spent)
);

CREATE TABLE sessions (
    id         bigserial PRIMARY KEY,
    platform   text NOT NULL,
    workspace  text NOT NULL DEFAULT '',
    channel    text NOT NULL,
    thread     text NOT NULL,
    model      text NOT NULL,
    created_by bigint REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz,
    UNIQUE (platform, workspace, channel, thread)
);

CREATE TABLE messages (
    id                  bigserial PRIMARY KEY,
    session_id          bigint NOT NULL REFERENCES sessions (id),
    role                text NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
    user_id             bigint REFERENCES users (id),
    text                text NOT NULL DEFAULT '',
    attachments         jsonb NOT NULL DEFAULT '[]',
    platform_message_id text,
    generation_id       bigint,
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX messages_session ON messages (session_id, id);

CREATE TABLE reservations (
    id            bigserial PRIMARY KEY,
    user_id       bigint NOT NULL REFERENCES users (id),
    generation_id bigint,
    amount        bigint NOT NULL CHECK (amount >= 0),
    status        reservation_status NOT NULL DEFAULT 'pending',
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    settled_at    timestamptz,
    CONSTRAINT reservations_settled_once CHECK ((status = 'pending') = (settled_at IS NULL))
);
CREATE INDEX reservations_pending ON reservations (expires_at) WHERE status = 'pending';

CREATE TABLE generations (
    id               bigserial PRIMARY KEY,
    session_id       bigint NOT NULL REFERENCES sessions (id),
    message_id       bigint REFERENCES messages (id),
    user_id          bigint NOT NULL REFERENCES users (id),
    platform         text NOT NULL,
    source_event     text NOT NULL,
    model            text NOT NULL,
    params           jsonb NOT NULL DEFAULT '{}',
    intent           text NOT NULL DEFAULT 'new',
    user_prompt      text NOT NULL DEFAULT '',
    refined_prompt   text,
    parent_id        bigint REFERENCES generations (id),
    compare_group    text,
    status           generation_status NOT NULL DEFAULT 'queued',
    stage            generation_stage NOT NULL DEFAULT 'received',
    attempts         integer NOT NULL DEFAULT 0,
    max_attempts     integer NOT NULL DEFAULT 3,
    claims           integer NOT NULL DEFAULT 0,
    run_after        timestamptz NOT NULL DEFAULT now(),
    locked_by        text,
    locked_until     timestamptz,
    deadline_at      timestamptz NOT NULL,
    reservation_id   bigint REFERENCES reservations (id),
    cost             bigint NOT NULL DEFAULT 0,
    external_id      text,
    status_message   jsonb,
    image_message    jsonb,
    error_kind       text,
    error            text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz,
    UNIQUE (platform, source_event)
);
CREATE INDEX generations_queue ON generations (run_after, id) WHERE status = 'queued';
CREATE INDEX generations_running ON generations (locked_until) WHERE status = 'running';
CREATE INDEX generations_waiting ON generations (run_after) WHERE status = 'waiting';
CREATE INDEX generations_user_recent ON generations (user_id, created_at);
CREATE INDEX generations_session ON generations (session_id, id);
CREATE UNIQUE INDEX generations_external ON generations (external_id) WHERE external_id IS NOT NULL;

ALTER TABLE sessions ADD COLUMN head_generation_id bigint REFERENCES generations (id);
ALTER TABLE messages ADD CONSTRAINT messages_generation
    FOREIGN KEY (generation_id) REFERENCES generations (id);
ALTER TABLE reservations ADD CONSTRAINT reservations_generation
    FOREIGN KEY (generation_id) REFERENCES generations (id);

-- Append-only; every entry has a unique idempotency key.
CREATE TABLE ledger (
    id              bigserial PRIMARY KEY,
    user_id         bigint NOT NULL REFERENCES users (id),
    kind            ledger_kind NOT NULL,
    amount          bigint NOT NULL CHECK (amount >= 0),
    reason          text NOT NULL DEFAULT '',
    generation_id   bigint REFERENCES generations (id),
    reservation_id  bigint REFERENCES reservations (id),
    idempotency_key text NOT NULL UNIQUE,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ledger_user ON ledger (user_id);

CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only';
END $$;
CREATE TRIGGER ledger_no_update BEFORE UPDATE OR DELETE ON ledger
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();

CREATE TABLE assets (
    id            bigserial PRIMARY KEY,
    generation_id bigint REFERENCES generations (id),
    message_id    bigint REFERENCES messages (id),
    kind          text NOT NULL DEFAULT 'output' CHECK (kind IN ('output', 'upload')),
    idx           integer NOT NULL DEFAULT 0,
    object_key    text NOT NULL UNIQUE,
    content_type  text NOT NULL,
    size_bytes    bigint NOT NULL,
    sha256        text NOT NULL,
    width         integer,
    height        integer,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX assets_generation ON assets (generation_id);
CREATE INDEX assets_message ON assets (message_id);

CREATE TABLE generation_events (
    id            bigserial PRIMARY KEY,
    generation_id bigint NOT NULL REFERENCES generations (id),
    claim         integer NOT NULL DEFAULT 0,
    stage         text NOT NULL,
    detail        jsonb NOT NULL DEFAULT '{}',
    duration_ms   double precision,
    at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX generation_events_generation ON generation_events (generation_id, id);

-- One webhook id, one effect.
CREATE TABLE webhook_deliveries (
    webhook_id    text PRIMARY KEY,
    source        text NOT NULL,
    generation_id bigint REFERENCES generations (id),
    received_at   timestamptz NOT NULL DEFAULT now()
);

-- Workers announce themselves so `easel status` can list the live ones.
CREATE TABLE workers (
    id         text PRIMARY KEY,
    host       text NOT NULL,
    pid        integer NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    seen_at    timestamptz NOT NULL DEFAULT now(),
    done_count bigint NOT NULL DEFAULT 0
);
