-- The operator's view (issue 17): failed generations of the last day, and retry.

-- A retry is a new generation linked to the failed one; at most one per failed generation
-- (a second click finds the first retry; a retry that fails is retried itself).
ALTER TABLE generations ADD COLUMN retry_of bigint REFERENCES generations (id);
CREATE UNIQUE INDEX generations_retry_of ON generations (retry_of) WHERE retry_of IS NOT NULL;

-- The dead-letter view reads the failures of a window, newest first: failures are few,
-- so this index stays small, and it names no column a stage write changes (HOT stays).
CREATE INDEX generations_failed ON generations (finished_at) WHERE status = 'failed';
