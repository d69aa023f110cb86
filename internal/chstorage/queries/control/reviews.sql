-- Break-glass reviews by credential (one credential's when given).
-- param: credential_id String = 'c1'
SELECT credential_id, argMax(status, version), argMax(outcome, version), argMax(reviewer, version),
    argMax(note, version), max(updated_ms)
FROM breakglass_reviews
/*if credential_id*/ WHERE credential_id = {credential_id:String} /*end*/
GROUP BY credential_id
