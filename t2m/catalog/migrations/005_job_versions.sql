-- Regenerating a scene of a finished job makes the video's next version; the one it replaced stays
-- downloadable (its files live under jobs/<id>/ or jobs/<id>/v<n>/) until the next one replaces it.
ALTER TABLE jobs ADD COLUMN previous_artifacts jsonb;
