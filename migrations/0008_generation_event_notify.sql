-- Live prompt flow: every recorded stage and every change of a generation's status or
-- stage is announced on `easel_generation_events` (payload: the generation id), so the
-- web server can stream generations that any worker process runs. NOTIFY is sent at
-- commit and collapses identical payloads within a transaction, so a statement that
-- records three stages wakes a listener once.
CREATE FUNCTION easel_notify_generation_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Each branch is planned only when it runs, so each names its own table's column.
    IF TG_TABLE_NAME = 'generations' THEN
        PERFORM pg_notify('easel_generation_events', NEW.id::text);
    ELSE
        PERFORM pg_notify('easel_generation_events', NEW.generation_id::text);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER generation_events_notify AFTER INSERT ON generation_events
    FOR EACH ROW EXECUTE FUNCTION easel_notify_generation_event();

CREATE TRIGGER generations_progress_notify AFTER UPDATE OF status, stage ON generations
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.stage IS DISTINCT FROM NEW.stage)
    EXECUTE FUNCTION easel_notify_generation_event();
