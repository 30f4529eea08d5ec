-- A person's own defaults (issue 16): `/settings` model, aspect, resolution, style.
-- New threads use them; a thread's own `/model` still wins.
CREATE TABLE user_preferences (
    user_id bigint PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    model text,
    aspect_ratio text,
    resolution text,
    style text,
    updated_at timestamptz NOT NULL DEFAULT now()
);
