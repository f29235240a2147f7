"""The `t2m` command: the shell on top of the API, the worker and the workflow client."""
