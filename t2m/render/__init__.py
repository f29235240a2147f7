"""Rendering untrusted scene code: the static check, the render in the jail, and what runs inside it."""
