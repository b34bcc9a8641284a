"""The device dialect: an access-control device's webhook API, under /api/v1."""
