-- The baseline loop's table, in a comparison round's own database: the raw
-- records' envelope fields and payload, a plain MergeTree.
CREATE TABLE IF NOT EXISTS baseline_raw (
    vendor String,
    received_ms Int64,
    partition UInt16,
    offset Int64,
    payload String,
    inserted_ms Int64
) ENGINE = MergeTree
ORDER BY (vendor, received_ms)
