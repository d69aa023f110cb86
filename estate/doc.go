// Package estate models a mixed lock estate the way the practitioners' guide
// asks (map capabilities before you migrate, assign risk tiers, route
// sensitive doors to capable hardware, upgrade critical doors first):
//
//   - a capability matrix per vendor × model × firmware rule, with shipped
//     defaults that name their public source (or say "assumed") and a JSON
//     configuration that replaces or adds rows (Matrix, Profile);
//   - risk tiers and what each demands of a lock (Tiers, Requirement);
//   - the policy a grant meets on one lock: the gaps, and what the grant can
//     actually carry there (Gaps, CarryOn, Policy.Check);
//   - the weak links of an estate ranked by risk and traffic, with the
//     cheapest upgrade that closes every gap (Policy.WeakLinks, Plan).
//
// Everything here is pure: no I/O beyond LoadConfig, no clock, no globals.
package estate
