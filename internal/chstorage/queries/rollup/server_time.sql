-- The server's clock (dirty marks are stamped with it).
SELECT now()
