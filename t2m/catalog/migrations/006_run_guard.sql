-- Catalog writes are guarded, so a late write never replaces a newer one (t2m/catalog/db.py `record`):
-- the workflow run that owns the row, the sequence number of that run's last write, and the runs
-- the row has moved on from (a retry's or next version's requeue, a reset's new run).
ALTER TABLE jobs ADD COLUMN run_id text;
ALTER TABLE jobs ADD COLUMN seq bigint NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN retired_runs text[] NOT NULL DEFAULT '{}';
