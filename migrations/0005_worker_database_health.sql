-- Each worker writes down how its database connection has fared, so `easel status`
-- shows that a worker lived through an outage (and how long it was).
ALTER TABLE workers ADD COLUMN db_outages integer NOT NULL DEFAULT 0;
ALTER TABLE workers ADD COLUMN db_last_outage_s double precision;
