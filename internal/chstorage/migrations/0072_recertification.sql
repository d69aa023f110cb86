-- Access recertification (package recert): a campaign asks a site's managers
-- to confirm or revoke each live credential of the site by a deadline;
-- what is left undecided then is suspended (or left, per the campaign).
-- Campaigns are versioned (closed_ms set when the deadline was enforced);
-- items are the credentials as they were when the campaign opened;
-- decisions are the newest per item (ReplacingMergeTree by version).
-- shard: cityHash64(campaign_id)
CREATE TABLE IF NOT EXISTS recert_campaigns (
    campaign_id String,
    site_id String,
    created_ms Int64,
    deadline_ms Int64,
    created_by String,
    on_deadline String,
    closed_ms Int64,
    version UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY campaign_id;

-- shard: cityHash64(campaign_id)
CREATE TABLE IF NOT EXISTS recert_items (
    campaign_id String,
    credential_id String,
    subject_id String,
    role String,
    state String,
    door_groups Array(String)
) ENGINE = ReplacingMergeTree
ORDER BY (campaign_id, credential_id);

-- shard: cityHash64(campaign_id)
CREATE TABLE IF NOT EXISTS recert_decisions (
    campaign_id String,
    credential_id String,
    decision String,
    actor String,
    note String,
    ts_ms Int64,
    version UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (campaign_id, credential_id);
