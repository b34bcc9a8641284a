"""The rules of hookd, free of I/O: webhooks, events, states, signing, credentials, validation."""
