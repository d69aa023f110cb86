-- Records a completed run: the watermark it started from.
-- param: name String = 'access_rollups'
-- param: watermark DateTime = '2024-03-04 05:06:07'
-- param: updated_ms Int64 = 1709528767000
INSERT INTO access_rollup_state (name, watermark, updated_ms) VALUES ({name:String}, {watermark:DateTime}, {updated_ms:Int64})
