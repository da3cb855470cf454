"""Spark jobs (ETL, ALS, batch scoring) that write the same artifacts as the single-machine path."""
