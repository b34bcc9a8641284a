"""The rules of hookd, free of I/O: webhook fields, event catalogues, signing."""
