"""The web console: server-rendered pages over the core and both dialects, served at `/`."""
