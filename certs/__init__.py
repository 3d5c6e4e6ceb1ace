"""A local certificate authority that mints per-host certificates."""
