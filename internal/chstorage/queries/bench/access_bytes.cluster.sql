-- Cluster mode: bytes on disk of the access tables' local parts, one replica
-- of every shard.
-- param: database String = 'kfcheck'
-- param: cluster Identifier = keyfleet
SELECT sum(bytes_on_disk) FROM cluster({cluster:Identifier}, system, parts)
WHERE database = {database:String} AND active AND table LIKE 'access%'
