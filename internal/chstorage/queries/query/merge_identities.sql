-- Merges subject_identities now, so an erased identity's older versions
-- leave the active parts at once.
OPTIMIZE TABLE subject_identities FINAL
