"""pumpcc-worker: the HTTP worker that compiles jobs in sandboxed roots."""

__version__ = "0.1.0"
