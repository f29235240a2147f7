"""What t2m keeps: the job catalog and API keys in PostgreSQL, its migrations, share links, the result cache, artifact storage."""
