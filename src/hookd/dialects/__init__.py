"""The API dialects hookd speaks, each a package of its own on the neutral core."""
