"""pumpcc's local server: include analysis, file store and dispatch to workers."""
