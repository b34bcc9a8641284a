"""hookd: a self-hosted webhook service."""

__version__ = "0.1.0"
