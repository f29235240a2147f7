-- Share links: anyone holding the token may watch that one job's video, until it is revoked.
-- A job has at most one live link; revoked rows stay, so an old link keeps answering 404.
CREATE TABLE shares (
    token      text PRIMARY KEY,
    job_id     text NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
CREATE UNIQUE INDEX shares_live_per_job ON shares (job_id) WHERE revoked_at IS NULL;
-- Model usage of a job's earlier runs (before each retry), so totals cover every run.
ALTER TABLE jobs ADD COLUMN usage_before jsonb;
