"""The repository dialect: a document repository's event webhooks and validation hooks (/r/)."""
