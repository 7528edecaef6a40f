"""The internal surface the git hooks of every push call back on (a Unix socket)."""
