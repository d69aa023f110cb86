-- One instance's figures as its ingest health sampler last computed them.
-- param: instance String = 'host-1:8080'
-- param: ts DateTime = '2024-03-04 05:06:07'
-- param: ts_ms Int64 = 1709528767000
-- param: started_ms Int64 = 1709528700000
-- param: consumed_per_s Float64 = 120.5
-- param: inserted_per_s Float64 = 118
-- param: dead_lettered_per_s Float64 = 2.5
-- param: consumed_total Float64 = 10000
-- param: inserted_total Float64 = 9800
-- param: dead_lettered_total Float64 = 200
-- param: insert_failures_total Float64 = 0
-- param: unacknowledged Float64 = 3
INSERT INTO instance_stats (instance, ts, ts_ms, started_ms, consumed_per_s, inserted_per_s, dead_lettered_per_s,
    consumed_total, inserted_total, dead_lettered_total, insert_failures_total, unacknowledged)
VALUES ({instance:String}, {ts:DateTime}, {ts_ms:Int64}, {started_ms:Int64}, {consumed_per_s:Float64},
    {inserted_per_s:Float64}, {dead_lettered_per_s:Float64}, {consumed_total:Float64}, {inserted_total:Float64},
    {dead_lettered_total:Float64}, {insert_failures_total:Float64}, {unacknowledged:Float64})
