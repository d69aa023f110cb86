-- The sites a new token is limited to.
-- param: id String = 't1'
-- param: sites Array(String) = ['s1']
-- param: created_ms Int64 = 1709528767000
INSERT INTO api_token_scopes (id, sites, created_ms)
VALUES ({id:String}, {sites:Array(String)}, {created_ms:Int64})
