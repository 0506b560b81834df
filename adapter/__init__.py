"""pumpcc's client side: the launcher, command parsing, configuration."""
