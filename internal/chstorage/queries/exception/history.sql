-- An exception's records in the register's history, newest first.
-- param: id String = 'ex1'
-- param: limit UInt64 = 50
SELECT record FROM exceptions FINAL
WHERE id = {id:String}
ORDER BY version DESC LIMIT {limit:UInt64}
