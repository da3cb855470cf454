"""HTTP: ``create_app``, routers, schemas, auth, middleware and the mapping of errors to status
codes (which live only here)."""
