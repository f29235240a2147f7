-- What a job's model calls have cost over all its runs, booked by the model activities as each
-- call completes (even one whose result a cancelled run never took): the budget of a retry is
-- what is left of it (api/service.py `run_again`).
ALTER TABLE jobs ADD COLUMN booked_usd double precision NOT NULL DEFAULT 0;
