"""The HTTP API: app factory, authentication, one router per dialect, error shapes."""
