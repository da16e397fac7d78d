"""Console users, roles, Argon2 password hashes and API tokens (``store``)."""
