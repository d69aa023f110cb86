-- How many users the identity store holds (deleted ones not counted).
SELECT count() FROM (
    SELECT id, argMax(deleted, version) AS del FROM identity_resources WHERE type = 'User' GROUP BY id
) WHERE del = 0
