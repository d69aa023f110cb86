-- Issue 19: the device a credential was activated on, as the activation
-- recorded it: phone model, OS name and version, the security patch level
-- and the wallet/app version; device_facts says where the OS facts come
-- from: 'attested' (proved by a verified attestation, e.g. Android key
-- attestation's osVersion/osPatchLevel), 'app_reported' (the activation
-- request's claim), '' (none). Portable as 0130.
ALTER TABLE credential_events ADD COLUMN IF NOT EXISTS phone_model String DEFAULT '';
ALTER TABLE credential_events ADD COLUMN IF NOT EXISTS os_name String DEFAULT '';
ALTER TABLE credential_events ADD COLUMN IF NOT EXISTS os_version String DEFAULT '';
ALTER TABLE credential_events ADD COLUMN IF NOT EXISTS os_patch_level String DEFAULT '';
ALTER TABLE credential_events ADD COLUMN IF NOT EXISTS app_version String DEFAULT '';
ALTER TABLE credential_events ADD COLUMN IF NOT EXISTS device_facts String DEFAULT '';
