-- An Idempotency-Key stands for one request: keep a hash of the request it was first sent with,
-- so a replay with a different body can be told apart (and refused) rather than answered with the
-- first job. Rows created before this migration have none and are matched on the key alone.
ALTER TABLE jobs ADD COLUMN request_hash text;
