-- The job catalog: one row per video job, outliving Temporal's retention.
CREATE TABLE jobs (
    id              text PRIMARY KEY,
    owner           text NOT NULL,
    request         jsonb NOT NULL,
    priority        text NOT NULL DEFAULT 'normal',
    status          text NOT NULL DEFAULT 'queued',
    error           text,
    progress        jsonb,
    idempotency_key text,
    artifacts       jsonb,
    checkpoint      jsonb,
    usage           jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz,
    deleted_at      timestamptz
);
CREATE UNIQUE INDEX jobs_owner_idempotency ON jobs (owner, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX jobs_owner_created ON jobs (owner, created_at DESC) WHERE deleted_at IS NULL;

CREATE TABLE api_keys (
    id         bigserial PRIMARY KEY,
    user_id    text NOT NULL,
    is_admin   boolean NOT NULL DEFAULT false,
    key_hash   text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
