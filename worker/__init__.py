"""pumpcc-worker: the HTTP worker that compiles jobs in sandboxed roots."""
