-- A subject's newest organisation reference (empty when erased).
-- param: subject_id String = 'sub1'
SELECT subject_ref, display_name, updated_ms FROM subject_identities
WHERE subject_id = {subject_id:String} ORDER BY updated_ms DESC LIMIT 1
