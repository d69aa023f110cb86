-- Merges replaced versions (and deleted people's documents) away.
OPTIMIZE TABLE identity_resources FINAL
