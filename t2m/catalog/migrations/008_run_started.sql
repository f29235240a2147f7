-- When the job's current run started: its creation, then each retry or next version (`requeue`).
-- The status carries it, so a retry is timed from itself, not from the job's creation.
ALTER TABLE jobs ADD COLUMN run_started_at timestamptz;
UPDATE jobs SET run_started_at = created_at;
ALTER TABLE jobs ALTER COLUMN run_started_at SET DEFAULT now(),
                 ALTER COLUMN run_started_at SET NOT NULL;
