-- The final status edit is remembered, so the sweeper can deliver it when a worker
-- died between finishing a generation and saying so in the thread.
ALTER TABLE generations ADD COLUMN final_shown_at timestamptz;
UPDATE generations SET final_shown_at = finished_at WHERE finished_at IS NOT NULL;
CREATE INDEX generations_final_unshown ON generations (finished_at)
    WHERE final_shown_at IS NULL AND finished_at IS NOT NULL;

-- A provider's webhook can beat the worker parking the job: remember which
-- prediction it was for, so parking sees that it is already done.
ALTER TABLE webhook_deliveries ADD COLUMN external_id text;
CREATE INDEX webhook_deliveries_external ON webhook_deliveries (external_id);
