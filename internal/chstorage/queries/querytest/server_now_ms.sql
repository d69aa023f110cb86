-- The server's clock in milliseconds, whole seconds (load_events stamps
-- inserted_ms with it).
SELECT toInt64(toUnixTimestamp(now())) * 1000
