-- The revoked credentials of revocations requested since a time that were
-- escalated.
-- param: from DateTime = '2024-03-04 05:06:07'
SELECT DISTINCT revocation_id, credential_id FROM revocation_escalations WHERE ts >= {from:DateTime}
