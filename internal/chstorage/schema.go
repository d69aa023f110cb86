package chstorage

// The tables the migrations create, with their columns in CREATE order: the
// one place Go code takes table and column names from. TestSchema checks
// them against the migrated tables (DESCRIBE) on the real server.

// Table is one table: its name and columns.
type Table struct {
	Name    string
	Columns []Column
}

// Column is one column and its ClickHouse type.
type Column struct{ Name, Type string }

// Has reports whether the table has the column.
func (t Table) Has(column string) bool {
	for _, c := range t.Columns {
		if c.Name == column {
			return true
		}
	}
	return false
}

// Column returns name after checking the table has it; it panics otherwise,
// so an allow-list of columns built at package init fails at start.
func (t Table) Column(name string) string {
	if !t.Has(name) {
		panic("chstorage: table " + t.Name + " has no column " + name)
	}
	return name
}

// ColumnNames returns the column names in order.
func (t Table) ColumnNames() []string {
	out := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		out[i] = c.Name
	}
	return out
}

// accessColumns are the columns of access_events and of its copy ordered
// by subject.
var accessColumns = []Column{
	{"event_id", "UUID"}, {"ts", "DateTime"}, {"ts_ms", "Int64"}, {"received_ms", "Int64"}, {"vendor", "String"},
	{"site_id", "String"}, {"zone_id", "String"}, {"door_id", "String"}, {"lock_id", "String"},
	{"subject_id", "String"}, {"credential_id", "String"}, {"device_id", "String"}, {"attested", "String"},
	{"action", "String"}, {"outcome", "String"}, {"method", "String"}, {"reason", "String"},
	{"vendor_code", "String"}, {"break_glass", "UInt8"}, {"raw_ref", "String"}, {"inserted_ms", "Int64"},
	// 0130_access_dimensions.sql
	{"lock_model", "String"}, {"lock_firmware", "String"}, {"phone_model", "String"}, {"os_name", "String"},
	{"os_version", "String"}, {"app_version", "String"},
}

// identityColumns are a SCIM resource version's columns, in identity_resources
// and identity_staged.
var identityColumns = []Column{
	{"type", "String"}, {"id", "String"}, {"version", "UInt64"}, {"deleted", "UInt8"}, {"created_ms", "Int64"},
	{"modified_ms", "Int64"}, {"subject_id", "String"}, {"user_name", "String"}, {"external_id", "String"},
	{"display_name", "String"}, {"members", "Array(String)"}, {"doc", "String"},
}

var (
	// migrate.go
	SchemaMigrations = Table{Name: "schema_migrations", Columns: []Column{
		{"version", "UInt32"}, {"name", "String"}, {"applied_at", "DateTime"},
	}}
	// 0001_access_events.sql, re-keyed by 0090_access_events_one_copy.sql
	AccessEvents = Table{Name: "access_events", Columns: accessColumns}
	// 0001_access_events.sql
	DeadLetters = Table{Name: "dead_letters", Columns: []Column{
		{"ts", "DateTime"}, {"ts_ms", "Int64"}, {"vendor", "String"}, {"reason", "String"}, {"error", "String"},
		{"source", "String"}, {"payload_size", "UInt32"}, {"payload_sha256", "String"},
	}}
	// 0002_api_tokens.sql
	APITokens = Table{Name: "api_tokens", Columns: []Column{
		{"id", "String"}, {"name", "String"}, {"role", "String"}, {"hash", "String"}, {"created_ms", "Int64"},
		{"revoked_ms", "Int64"}, {"version", "UInt64"},
	}}
	// 0120_api_tokens_expiry.sql (replaces api_tokens)
	APITokensV2 = Table{Name: "api_tokens_v2", Columns: []Column{
		{"id", "String"}, {"name", "String"}, {"role", "String"}, {"hash", "String"}, {"created_ms", "Int64"},
		{"revoked_ms", "Int64"}, {"expires_ms", "Int64"}, {"version", "UInt64"},
	}}
	// 0010_alerts.sql
	Alerts = Table{Name: "alerts", Columns: []Column{
		{"alert_id", "String"}, {"version", "UInt64"}, {"detector", "String"}, {"severity", "String"},
		{"subject_id", "String"}, {"credential_id", "String"}, {"door_id", "String"}, {"site_id", "String"},
		{"ts", "DateTime"}, {"ts_ms", "Int64"}, {"window_start_ms", "Int64"}, {"window_end_ms", "Int64"},
		{"observed", "Float64"}, {"threshold", "Float64"}, {"baseline", "Float64"}, {"evidence", "Array(String)"},
		{"explanation", "String"}, {"suggested_action", "String"}, {"suppressed_count", "UInt32"},
		{"revision", "UInt32"}, {"rules_version", "Int32"}, {"status", "String"}, {"status_note", "String"},
		{"status_by", "String"}, {"status_ms", "Int64"}, {"source_received_ms", "Int64"}, {"detected_ms", "Int64"},
		{"updated_ms", "Int64"},
	}}
	// 0091_alert_index.sql
	AlertIndex = Table{Name: "alert_index", Columns: []Column{
		{"site_id", "String"}, {"alert_id", "String"}, {"ts", "DateTime"}, {"ts_ms", "Int64"},
		{"detector", "String"}, {"severity", "String"}, {"status", "String"}, {"version", "UInt64"},
	}}
	// 0140_alerts_open.sql
	AlertsOpen = Table{Name: "alerts_open", Columns: []Column{
		{"site_id", "String"}, {"alert_id", "String"}, {"ts", "DateTime"}, {"ts_ms", "Int64"},
		{"detector", "String"}, {"severity", "String"}, {"version", "UInt64"}, {"sign", "Int8"},
	}}
	// 0010_alerts.sql
	AlertActions = Table{Name: "alert_actions", Columns: []Column{
		{"action_id", "String"}, {"alert_id", "String"}, {"alert_ts", "DateTime"}, {"rule", "String"},
		{"action", "String"}, {"outcome", "String"}, {"detail", "String"}, {"detector", "String"},
		{"severity", "String"}, {"credential_id", "String"}, {"site_id", "String"}, {"actor", "String"},
		{"reversal", "String"}, {"ts_ms", "Int64"}, {"version", "UInt64"},
	}}
	// 0010_alerts.sql
	AlertTickets = Table{Name: "alert_tickets", Columns: []Column{
		{"ticket_id", "String"}, {"alert_id", "String"}, {"alert_ts", "DateTime"}, {"detector", "String"},
		{"severity", "String"}, {"title", "String"}, {"body", "String"}, {"subject_id", "String"},
		{"credential_id", "String"}, {"door_id", "String"}, {"site_id", "String"}, {"status", "String"},
		{"assignee", "String"}, {"created_ms", "Int64"}, {"updated_ms", "Int64"}, {"version", "UInt64"},
	}}
	// 0010_alerts.sql
	DetectBaselines = Table{Name: "detect_baselines", Columns: []Column{
		{"subject_id", "String"}, {"role", "String"}, {"state", "String"}, {"updated_ms", "Int64"},
	}}
	// 0020_credential_events.sql
	CredentialEvents = Table{Name: "credential_events", Columns: []Column{
		{"credential_id", "String"}, {"seq", "UInt64"}, {"ts", "DateTime"}, {"ts_ms", "Int64"}, {"op", "String"},
		{"state", "String"}, {"prev_state", "String"}, {"subject_id", "String"}, {"role", "String"},
		{"site_id", "String"}, {"device_id", "String"}, {"attested", "UInt8"}, {"break_glass", "UInt8"},
		{"exception", "UInt8"}, {"door_groups", "Array(String)"}, {"valid_from_ms", "Int64"},
		{"valid_until_ms", "Int64"}, {"issuer", "String"}, {"approvers", "Array(String)"},
		{"approval_rule", "String"}, {"reason", "String"}, {"actor", "String"}, {"request_id", "String"},
		{"command_id", "String"}, {"revocation_id", "String"}, {"requested_ms", "Int64"}, {"issued_ms", "Int64"},
		{"lock_count", "UInt32"}, {"record", "String"}, {"inserted_ms", "Int64"},
		// 0131_credential_device.sql
		{"phone_model", "String"}, {"os_name", "String"}, {"os_version", "String"}, {"os_patch_level", "String"},
		{"app_version", "String"}, {"device_facts", "String"},
	}}
	// 0021_control.sql
	ControlRequests = Table{Name: "control_requests", Columns: []Column{
		{"request_id", "String"}, {"kind", "String"}, {"idempotency_key", "String"}, {"body_sha256", "String"},
		{"caller", "String"}, {"ts", "DateTime"}, {"created_ms", "Int64"}, {"total", "UInt32"},
		{"rejected", "UInt32"}, {"response", "String"},
	}}
	// 0021_control.sql
	ControlRequestItems = Table{Name: "control_request_items", Columns: []Column{
		{"request_id", "String"}, {"item", "UInt32"}, {"credential_id", "String"}, {"status", "String"},
		{"error", "String"}, {"detail", "String"}, {"updated_ms", "Int64"}, {"version", "UInt64"},
	}}
	// 0021_control.sql
	RevocationRequests = Table{Name: "revocation_requests", Columns: []Column{
		{"revocation_id", "String"}, {"scope", "String"}, {"subject_id", "String"},
		{"credential_ids", "Array(String)"}, {"ts", "DateTime"}, {"requested_ms", "Int64"}, {"actor", "String"},
		{"reason", "String"},
	}}
	// 0021_control.sql
	Revocations = Table{Name: "revocations", Columns: []Column{
		{"revocation_id", "String"}, {"credential_id", "String"}, {"subject_id", "String"}, {"scope", "String"},
		{"ts", "DateTime"}, {"requested_ms", "Int64"}, {"disabled_ms", "Int64"}, {"session_revoked_ms", "Int64"},
		{"device_id", "String"}, {"locks_total", "UInt32"},
	}}
	// 0021_control.sql
	RevocationLocks = Table{Name: "revocation_locks", Columns: []Column{
		{"revocation_id", "String"}, {"credential_id", "String"}, {"vendor", "String"}, {"lock_id", "String"},
		{"command_id", "String"}, {"ts", "DateTime"}, {"issued_ms", "Int64"},
	}}
	// 0021_control.sql
	LockAcks = Table{Name: "lock_acks", Columns: []Column{
		{"command_id", "String"}, {"revocation_id", "String"}, {"type", "String"}, {"vendor", "String"},
		{"lock_id", "String"}, {"credential_id", "String"}, {"status", "String"}, {"error", "String"},
		{"ts", "DateTime"}, {"received_ms", "Int64"}, {"applied_ms", "Int64"}, {"acked_ms", "Int64"},
	}}
	// 0021_control.sql
	ControlTemplates = Table{Name: "control_templates", Columns: []Column{
		{"role", "String"}, {"version", "UInt64"}, {"template", "String"}, {"updated_ms", "Int64"},
		{"updated_by", "String"},
	}}
	// 0021_control.sql
	BreakglassReviews = Table{Name: "breakglass_reviews", Columns: []Column{
		{"credential_id", "String"}, {"status", "String"}, {"outcome", "String"}, {"reviewer", "String"},
		{"note", "String"}, {"updated_ms", "Int64"}, {"version", "UInt64"},
	}}
	// 0050_revocation_layers.sql
	LockCommandSends = Table{Name: "lock_command_sends", Columns: []Column{
		{"command_id", "String"}, {"attempt", "UInt32"}, {"type", "String"}, {"vendor", "String"}, {"lock_id", "String"},
		{"credential_id", "String"}, {"revocation_id", "String"}, {"seq", "UInt64"}, {"acl_version", "String"},
		{"issued_ms", "Int64"}, {"sent_ms", "Int64"}, {"ts", "DateTime"}, {"command", "String"},
	}}
	// 0050_revocation_layers.sql
	LockCommandOutcomes = Table{Name: "lock_command_outcomes", Columns: []Column{
		{"command_id", "String"}, {"outcome", "String"}, {"type", "String"}, {"vendor", "String"}, {"lock_id", "String"},
		{"credential_id", "String"}, {"revocation_id", "String"}, {"attempts", "UInt32"}, {"error", "String"},
		{"ts", "DateTime"}, {"outcome_ms", "Int64"},
	}}
	// 0050_revocation_layers.sql
	RevocationSessions = Table{Name: "revocation_sessions", Columns: []Column{
		{"session_key", "String"}, {"revocation_id", "String"}, {"credential_id", "String"}, {"subject_id", "String"},
		{"device_id", "String"}, {"scope", "String"}, {"reason", "String"}, {"requested_ms", "Int64"},
		{"status", "String"}, {"error", "String"}, {"attempts", "UInt32"}, {"done_ms", "Int64"},
		{"updated_ms", "Int64"}, {"ts", "DateTime"}, {"version", "UInt64"},
	}}
	// 0050_revocation_layers.sql
	RevocationEscalations = Table{Name: "revocation_escalations", Columns: []Column{
		{"revocation_id", "String"}, {"credential_id", "String"}, {"alert_id", "String"}, {"requested_ms", "Int64"},
		{"escalated_ms", "Int64"}, {"pending_locks", "UInt32"}, {"ts", "DateTime"},
	}}
	// 0050_revocation_layers.sql
	ACLResyncs = Table{Name: "acl_resyncs", Columns: []Column{
		{"command_id", "String"}, {"vendor", "String"}, {"lock_id", "String"}, {"reason", "String"},
		{"reported_version", "String"}, {"expected_version", "String"}, {"acl_version", "String"},
		{"entries", "UInt32"}, {"trigger_command_id", "String"}, {"ts", "DateTime"}, {"ts_ms", "Int64"},
	}}
	// 0050_revocation_layers.sql
	DrillRuns = Table{Name: "drill_runs", Columns: []Column{
		{"run_id", "String"}, {"scenario", "String"}, {"started_ms", "Int64"}, {"finished_ms", "Int64"},
		{"ts", "DateTime"}, {"actor", "String"}, {"subjects", "UInt32"}, {"credentials", "UInt32"},
		{"revocations", "UInt32"}, {"locks", "UInt32"}, {"confirmed", "UInt32"}, {"stragglers", "UInt32"},
		{"disable_p50_ms", "Int64"}, {"disable_p99_ms", "Int64"}, {"confirm_p50_ms", "Int64"},
		{"confirm_p99_ms", "Int64"}, {"session_state", "String"}, {"ticket_close_ms", "Int64"}, {"report", "String"},
	}}
	// 0022_audit_log.sql
	AuditLog = Table{Name: "audit_log", Columns: []Column{
		{"chain", "String"}, {"seq", "UInt64"}, {"ts", "DateTime"}, {"ts_ms", "Int64"}, {"actor", "String"},
		{"action", "String"}, {"target", "String"}, {"details", "String"}, {"prev_hash", "String"},
		{"hash", "String"},
	}}
	// 0030_api_token_usage.sql
	APITokenUsage = Table{Name: "api_token_usage", Columns: []Column{
		{"token_id", "String"}, {"last_used_ms", "Int64"},
	}}
	// 0031_access_events_by_subject.sql
	AccessEventsBySubject = Table{Name: "access_events_by_subject", Columns: accessColumns}
	// 0032_access_lookups.sql
	AccessLocations = Table{Name: "access_locations", Columns: []Column{
		{"month", "DateTime"}, {"site_id", "String"}, {"zone_id", "String"}, {"door_id", "String"},
		{"lock_id", "String"}, {"vendor", "String"}, {"last_ms", "Int64"},
	}}
	// 0032_access_lookups.sql
	AccessIdentities = Table{Name: "access_identities", Columns: []Column{
		{"month", "DateTime"}, {"credential_id", "String"}, {"device_id", "String"}, {"subject_id", "String"},
		{"last_ms", "Int64"},
	}}
	// 0033_subject_identities.sql
	SubjectIdentities = Table{Name: "subject_identities", Columns: []Column{
		{"subject_id", "String"}, {"subject_ref", "String"}, {"display_name", "String"}, {"updated_ms", "Int64"},
	}}
	// 0034_access_rollups.sql
	AccessRollupDirty = Table{Name: "access_rollup_dirty", Columns: []Column{
		{"hour_ms", "Int64"}, {"marked", "DateTime"},
	}}
	// 0034_access_rollups.sql
	AccessRollupHourly = Table{Name: "access_rollup_hourly", Columns: []Column{
		{"ts", "DateTime"}, {"hour_ms", "Int64"}, {"key_hash", "UInt64"}, {"site_id", "String"},
		{"vendor", "String"}, {"action", "String"}, {"outcome", "String"}, {"method", "String"},
		{"reason", "String"}, {"events", "UInt64"}, {"version", "UInt64"},
	}}
	// 0034_access_rollups.sql
	AccessRollupSubjectDaily = Table{Name: "access_rollup_subject_daily", Columns: []Column{
		{"ts", "DateTime"}, {"day_ms", "Int64"}, {"key_hash", "UInt64"}, {"outcome", "String"}, {"action", "String"},
		{"site_id", "String"}, {"subject_id", "String"}, {"events", "UInt64"}, {"version", "UInt64"},
	}}
	// 0170_access_rollups_coarser.sql
	AccessRollupSiteHourly = Table{Name: "access_rollup_site_hourly", Columns: []Column{
		{"ts", "DateTime"}, {"hour_ms", "Int64"}, {"key_hash", "UInt64"}, {"site_id", "String"},
		{"vendor", "String"}, {"action", "String"}, {"outcome", "String"}, {"events", "UInt64"}, {"version", "UInt64"},
	}}
	// 0170_access_rollups_coarser.sql
	AccessRollupDaily = Table{Name: "access_rollup_daily", Columns: []Column{
		{"ts", "DateTime"}, {"day_ms", "Int64"}, {"key_hash", "UInt64"}, {"site_id", "String"},
		{"vendor", "String"}, {"action", "String"}, {"outcome", "String"}, {"method", "String"},
		{"reason", "String"}, {"events", "UInt64"}, {"version", "UInt64"},
	}}
	// 0034_access_rollups.sql
	AccessRollupState = Table{Name: "access_rollup_state", Columns: []Column{
		{"name", "String"}, {"watermark", "DateTime"}, {"updated_ms", "Int64"},
	}}
	// 0092_credential_subjects.sql
	CredentialSubjects = Table{Name: "credential_subjects", Columns: []Column{
		{"subject_id", "String"}, {"credential_id", "String"}, {"first_ms", "Int64"},
	}}
	// 0040_reports.sql
	Reports = Table{Name: "reports", Columns: []Column{
		{"report_id", "String"}, {"week", "String"}, {"site", "String"}, {"ts", "DateTime"},
		{"generated_ms", "Int64"}, {"from_ms", "Int64"}, {"to_ms", "Int64"}, {"trigger", "String"},
		{"document", "String"}, {"version", "UInt64"},
	}}
	// 0080_identity.sql
	IdentityResources = Table{Name: "identity_resources", Columns: append(identityColumns[:len(identityColumns):len(identityColumns)],
		Column{"token", "String"})}
	// 0080_identity.sql
	IdentityStaged = Table{Name: "identity_staged", Columns: append([]Column{{"token", "String"}, {"ts", "DateTime"}},
		identityColumns...)}
	// 0080_identity.sql
	IdentityDecisions = Table{Name: "identity_decisions", Columns: []Column{
		{"token", "String"}, {"ts", "DateTime"}, {"outcome", "String"}, {"detail", "String"}, {"decided_ms", "Int64"},
	}}
	// 0081_identity_leavers.sql
	IdentityLeavers = Table{Name: "identity_leavers", Columns: []Column{
		{"subject_id", "String"}, {"change_ms", "Int64"}, {"reason", "String"}, {"revocation_id", "String"},
		{"credentials", "UInt32"}, {"ts", "DateTime"}, {"requested_ms", "Int64"},
	}}

	// 0160_instance_stats.sql
	InstanceStats = Table{Name: "instance_stats", Columns: []Column{
		{"instance", "String"}, {"ts", "DateTime"}, {"ts_ms", "Int64"}, {"started_ms", "Int64"},
		{"consumed_per_s", "Float64"}, {"inserted_per_s", "Float64"}, {"dead_lettered_per_s", "Float64"},
		{"consumed_total", "Float64"}, {"inserted_total", "Float64"}, {"dead_lettered_total", "Float64"},
		{"insert_failures_total", "Float64"}, {"unacknowledged", "Float64"},
	}}

	// Tables are all of them.
	// 0060_lock_registry.sql
	LockRegistry = Table{Name: "lock_registry", Columns: []Column{
		{"vendor", "String"}, {"lock_id", "String"}, {"version", "UInt64"}, {"ts", "DateTime"}, {"ts_ms", "Int64"},
		{"op", "String"}, {"actor", "String"}, {"reason", "String"}, {"retired", "UInt8"}, {"site_id", "String"},
		{"zone_id", "String"}, {"door_id", "String"}, {"groups", "Array(String)"}, {"model", "String"},
		{"firmware", "String"}, {"tier", "UInt8"}, {"record", "String"}, {"inserted_ms", "Int64"},
	}}
	// 0061_estate_migrations.sql
	EstateMigrations = Table{Name: "estate_migrations", Columns: []Column{
		{"migration_id", "String"}, {"from_vendor", "String"}, {"to_vendor", "String"}, {"ts", "DateTime"},
		{"requested_ms", "Int64"}, {"actor", "String"}, {"reason", "String"}, {"locks", "UInt32"},
		{"credentials", "UInt32"}, {"plan", "String"},
	}}
	// 0061_estate_migrations.sql
	EstateMigrationMoves = Table{Name: "estate_migration_moves", Columns: []Column{
		{"migration_id", "String"}, {"credential_id", "String"}, {"from_vendor", "String"}, {"from_lock", "String"},
		{"to_vendor", "String"}, {"to_lock", "String"}, {"state", "String"}, {"ts", "DateTime"}, {"requested_ms", "Int64"},
	}}

	// 0072_recertification.sql
	RecertCampaigns = Table{Name: "recert_campaigns", Columns: []Column{
		{"campaign_id", "String"}, {"site_id", "String"}, {"created_ms", "Int64"}, {"deadline_ms", "Int64"},
		{"created_by", "String"}, {"on_deadline", "String"}, {"closed_ms", "Int64"}, {"version", "UInt64"},
	}}
	// 0072_recertification.sql
	RecertItems = Table{Name: "recert_items", Columns: []Column{
		{"campaign_id", "String"}, {"credential_id", "String"}, {"subject_id", "String"}, {"role", "String"},
		{"state", "String"}, {"door_groups", "Array(String)"},
	}}
	// 0072_recertification.sql
	RecertDecisions = Table{Name: "recert_decisions", Columns: []Column{
		{"campaign_id", "String"}, {"credential_id", "String"}, {"decision", "String"}, {"actor", "String"},
		{"note", "String"}, {"ts_ms", "Int64"}, {"version", "UInt64"},
	}}
	// 0071_api_token_scopes.sql
	APITokenScopes = Table{Name: "api_token_scopes", Columns: []Column{
		{"id", "String"}, {"sites", "Array(String)"}, {"created_ms", "Int64"},
	}}
	// 0070_exceptions.sql
	Exceptions = Table{Name: "exceptions", Columns: []Column{
		{"id", "String"}, {"version", "UInt64"}, {"ts", "DateTime"}, {"ts_ms", "Int64"}, {"op", "String"},
		{"actor", "String"}, {"kind", "String"}, {"reason", "String"}, {"status", "String"}, {"site_id", "String"},
		{"start_ms", "Int64"}, {"expiry_ms", "Int64"}, {"review_ms", "Int64"}, {"record", "String"}, {"inserted_ms", "Int64"},
	}}

	Tables = []Table{SchemaMigrations, AccessEvents, DeadLetters, APITokens, APITokensV2, Alerts, AlertIndex, AlertsOpen, AlertActions, AlertTickets,
		DetectBaselines, CredentialEvents, ControlRequests, ControlRequestItems, RevocationRequests, Revocations,
		RevocationLocks, LockAcks, ControlTemplates, BreakglassReviews, LockCommandSends, LockCommandOutcomes,
		RevocationSessions, RevocationEscalations, ACLResyncs, DrillRuns, AuditLog, APITokenUsage,
		AccessEventsBySubject, AccessLocations, AccessIdentities, SubjectIdentities, AccessRollupDirty,
		AccessRollupHourly, AccessRollupSiteHourly, AccessRollupDaily, AccessRollupSubjectDaily, AccessRollupState, Reports, CredentialSubjects,
		LockRegistry, EstateMigrations, EstateMigrationMoves,
		IdentityResources, IdentityStaged, IdentityDecisions, IdentityLeavers, Exceptions, APITokenScopes,
		RecertCampaigns, RecertItems, RecertDecisions, InstanceStats}
)

// Views are the materialized views the migrations create. None reads
// access_events: 0090 dropped the five that did (the writer fills their
// tables itself, see pipeline.Derived).
var Views = []string{"credential_subjects_mv"}
