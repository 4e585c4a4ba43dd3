"""HTTP endpoints that external systems call: the ITSM's lifecycle webhook."""
