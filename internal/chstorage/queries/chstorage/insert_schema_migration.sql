-- Records one applied migration.
-- param: version UInt32 = 9999
-- param: name String = 'checker'
-- param: applied_at DateTime = '2024-03-04 05:06:07'
INSERT INTO schema_migrations (version, name, applied_at) VALUES ({version:UInt32}, {name:String}, {applied_at:DateTime})
