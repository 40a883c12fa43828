"""Hand-written course tooling: build, lint, validate, grade (the `course` CLI)."""
