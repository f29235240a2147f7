-- The whole-result cache: a finished job is found by its request's fingerprint (t2m/reuse.py).
ALTER TABLE jobs ADD COLUMN fingerprint text;
CREATE INDEX jobs_fingerprint_completed ON jobs (fingerprint, completed_at DESC)
    WHERE status = 'completed' AND deleted_at IS NULL;
