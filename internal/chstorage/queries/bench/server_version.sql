-- The server's version, for the benchmark report.
SELECT version()
