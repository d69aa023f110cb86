-- Issue 19: device and lock dimensions of an access event (see internal/event.Access):
-- the lock's model and firmware (from the vendor payload, else the lock
-- registry) and the phone's model, OS, OS version and wallet/app version
-- (from the vendor payload, else the credential's activation record). ''
-- when unknown. 18.16 has no ADD COLUMN IF NOT EXISTS: the migration runner
-- (chstorage.ExecMigration) checks system.columns first, so every statement
-- can run again; 26.x runs the clause natively.
ALTER TABLE access_events ADD COLUMN IF NOT EXISTS lock_model String DEFAULT '';
ALTER TABLE access_events ADD COLUMN IF NOT EXISTS lock_firmware String DEFAULT '';
ALTER TABLE access_events ADD COLUMN IF NOT EXISTS phone_model String DEFAULT '';
ALTER TABLE access_events ADD COLUMN IF NOT EXISTS os_name String DEFAULT '';
ALTER TABLE access_events ADD COLUMN IF NOT EXISTS os_version String DEFAULT '';
ALTER TABLE access_events ADD COLUMN IF NOT EXISTS app_version String DEFAULT '';
ALTER TABLE access_events_by_subject ADD COLUMN IF NOT EXISTS lock_model String DEFAULT '';
ALTER TABLE access_events_by_subject ADD COLUMN IF NOT EXISTS lock_firmware String DEFAULT '';
ALTER TABLE access_events_by_subject ADD COLUMN IF NOT EXISTS phone_model String DEFAULT '';
ALTER TABLE access_events_by_subject ADD COLUMN IF NOT EXISTS os_name String DEFAULT '';
ALTER TABLE access_events_by_subject ADD COLUMN IF NOT EXISTS os_version String DEFAULT '';
ALTER TABLE access_events_by_subject ADD COLUMN IF NOT EXISTS app_version String DEFAULT '';
