"""What every part of hookd's HTTP API shares: authentication, bodies, error shapes, HAL, health."""
