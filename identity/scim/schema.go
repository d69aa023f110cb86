package scim

import (
	"strings"
)

// Schema URNs (RFC 7643, RFC 7644) and keyfleet's access extension.
const (
	SchemaUser       = "urn:ietf:params:scim:schemas:core:2.0:User"
	SchemaGroup      = "urn:ietf:params:scim:schemas:core:2.0:Group"
	SchemaEnterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	SchemaAccess     = "urn:keyfleet:params:scim:schemas:extension:access:2.0:User"

	schemaSchema       = "urn:ietf:params:scim:schemas:core:2.0:Schema"
	schemaResourceType = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
	schemaSPConfig     = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
	msgListResponse    = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	msgPatchOp         = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	msgSearchRequest   = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
	msgError           = "urn:ietf:params:scim:api:messages:2.0:Error"
)

// AttrType is a SCIM attribute data type (RFC 7643 §2.3).
type AttrType string

// Attribute data types.
const (
	TypeString    AttrType = "string"
	TypeBoolean   AttrType = "boolean"
	TypeDecimal   AttrType = "decimal"
	TypeInteger   AttrType = "integer"
	TypeDateTime  AttrType = "dateTime"
	TypeReference AttrType = "reference"
	TypeBinary    AttrType = "binary"
	TypeComplex   AttrType = "complex"
)

// Mutability values (RFC 7643 §7).
const (
	ReadOnly  = "readOnly"
	ReadWrite = "readWrite"
	Immutable = "immutable"
	WriteOnly = "writeOnly"
)

// Returned values (RFC 7643 §7).
const (
	ReturnAlways  = "always"
	ReturnNever   = "never"
	ReturnDefault = "default"
	ReturnRequest = "request"
)

// Attribute describes one attribute as /Schemas publishes it; the engine
// validates, patches, filters and renders resources from these definitions
// alone.
type Attribute struct {
	Name            string       `json:"name"`
	Type            AttrType     `json:"type"`
	SubAttributes   []*Attribute `json:"subAttributes,omitempty"`
	MultiValued     bool         `json:"multiValued"`
	Description     string       `json:"description,omitempty"`
	Required        bool         `json:"required"`
	CanonicalValues []string     `json:"canonicalValues,omitempty"`
	CaseExact       bool         `json:"caseExact"`
	Mutability      string       `json:"mutability"`
	Returned        string       `json:"returned"`
	Uniqueness      string       `json:"uniqueness"`
	ReferenceTypes  []string     `json:"referenceTypes,omitempty"`
}

// Sub returns the sub-attribute called name (case-insensitive), or nil.
func (a *Attribute) Sub(name string) *Attribute {
	for _, s := range a.SubAttributes {
		if strings.EqualFold(s.Name, name) {
			return s
		}
	}
	return nil
}

func (a *Attribute) complex() bool { return a.Type == TypeComplex }

// Schema is one schema as /Schemas publishes it.
type Schema struct {
	ID          string       `json:"id"`
	Name        string       `json:"name"`
	Description string       `json:"description"`
	Attributes  []*Attribute `json:"attributes"`
}

// Attr returns the attribute called name (case-insensitive), or nil.
func (s *Schema) Attr(name string) *Attribute {
	for _, a := range s.Attributes {
		if strings.EqualFold(a.Name, name) {
			return a
		}
	}
	return nil
}

// Extension is a schema extension of a resource type.
type Extension struct {
	Schema   *Schema
	Required bool
}

// ResourceType is a kind of resource served (User, Group).
type ResourceType struct {
	Name        string
	Endpoint    string // "/Users"
	Description string
	Schema      *Schema
	Extensions  []Extension
}

// extension returns the extension schema with the given URN (case-insensitive).
func (rt *ResourceType) extension(urn string) *Schema {
	for _, e := range rt.Extensions {
		if strings.EqualFold(e.Schema.ID, urn) {
			return e.Schema
		}
	}
	return nil
}

type attrOpt func(*Attribute)

func newAttr(name string, t AttrType, desc string, opts ...attrOpt) *Attribute {
	a := &Attribute{Name: name, Type: t, Description: desc, Mutability: ReadWrite, Returned: ReturnDefault, Uniqueness: "none"}
	if t == TypeReference || t == TypeBinary {
		a.CaseExact = true
	}
	for _, o := range opts {
		o(a)
	}
	return a
}

func required(a *Attribute)  { a.Required = true }
func multi(a *Attribute)     { a.MultiValued = true }
func caseExact(a *Attribute) { a.CaseExact = true }
func readOnly(a *Attribute)  { a.Mutability = ReadOnly }
func immutable(a *Attribute) { a.Mutability = Immutable }
func unique(a *Attribute)    { a.Uniqueness = "server" }
func always(a *Attribute)    { a.Returned = ReturnAlways }
func canonical(v ...string) attrOpt {
	return func(a *Attribute) { a.CanonicalValues = v }
}
func refs(v ...string) attrOpt {
	return func(a *Attribute) { a.ReferenceTypes = v }
}
func subs(s ...*Attribute) attrOpt {
	return func(a *Attribute) { a.SubAttributes = s }
}

// commonSchema holds the attributes every resource has (RFC 7643 §3.1).
// They are not published under /Schemas but are filterable and sortable.
var commonSchema = &Schema{ID: "", Name: "common", Attributes: []*Attribute{
	newAttr("id", TypeString, "Unique identifier assigned by the service provider.", caseExact, readOnly, always, unique),
	newAttr("externalId", TypeString, "Identifier of the resource as the provisioning client knows it.", caseExact),
	newAttr("meta", TypeComplex, "Resource metadata.", readOnly, subs(
		newAttr("resourceType", TypeString, "The resource type.", caseExact, readOnly),
		newAttr("created", TypeDateTime, "When the resource was added.", readOnly),
		newAttr("lastModified", TypeDateTime, "When the resource was last changed.", readOnly),
		newAttr("location", TypeReference, "The URI of the resource.", readOnly, refs("uri")),
		newAttr("version", TypeString, "The version (entity tag) of the resource.", caseExact, readOnly),
	)),
}}

// userSchema is the subset of RFC 7643's User schema keyfleet keeps. Other
// attributes an identity provider sends (addresses, phone numbers, photos,
// passwords ...) are not stored: keyfleet does not need them.
var userSchema = &Schema{ID: SchemaUser, Name: "User", Description: "User Account", Attributes: []*Attribute{
	newAttr("userName", TypeString, "Unique identifier for the User, typically used to authenticate.", required, unique),
	newAttr("name", TypeComplex, "The components of the user's real name.", subs(
		newAttr("formatted", TypeString, "The full name, formatted for display."),
		newAttr("familyName", TypeString, "The family name."),
		newAttr("givenName", TypeString, "The given name."),
		newAttr("middleName", TypeString, "The middle name(s)."),
		newAttr("honorificPrefix", TypeString, "The honorific prefix(es)."),
		newAttr("honorificSuffix", TypeString, "The honorific suffix(es)."),
	)),
	newAttr("displayName", TypeString, "The name of the User, suitable for display."),
	newAttr("nickName", TypeString, "The casual way to address the user."),
	newAttr("title", TypeString, "The user's title, such as \"Vice President\"."),
	newAttr("userType", TypeString, "The relationship between the organization and the user, e.g. \"Employee\", \"Contractor\"."),
	newAttr("preferredLanguage", TypeString, "The user's preferred written or spoken language (RFC 7231 language tag)."),
	newAttr("locale", TypeString, "The user's default location for localization."),
	newAttr("timezone", TypeString, "The user's time zone (IANA name)."),
	newAttr("active", TypeBoolean, "The user's administrative status; false makes the user a leaver."),
	newAttr("emails", TypeComplex, "Email addresses for the user.", multi, subs(
		newAttr("value", TypeString, "Email address."),
		newAttr("display", TypeString, "A human-readable name."),
		newAttr("type", TypeString, "A label indicating the function.", canonical("work", "home", "other")),
		newAttr("primary", TypeBoolean, "The primary address; true at most once."),
	)),
	newAttr("groups", TypeComplex, "The groups the user belongs to directly (set through the Group resource).", multi, readOnly, subs(
		newAttr("value", TypeString, "The identifier of the group.", readOnly),
		newAttr("$ref", TypeReference, "The URI of the group.", readOnly, refs("Group")),
		newAttr("display", TypeString, "The group's display name.", readOnly),
		newAttr("type", TypeString, "How the membership is derived.", readOnly, canonical("direct", "indirect")),
	)),
}}

// groupSchema is RFC 7643's Group schema.
var groupSchema = &Schema{ID: SchemaGroup, Name: "Group", Description: "Group", Attributes: []*Attribute{
	newAttr("displayName", TypeString, "A human-readable name for the Group.", required),
	newAttr("members", TypeComplex, "A list of members of the Group.", multi, subs(
		newAttr("value", TypeString, "Identifier of the member.", immutable),
		newAttr("$ref", TypeReference, "The URI of the member.", immutable, refs("User", "Group")),
		newAttr("type", TypeString, "The type of the member.", immutable, canonical("User", "Group")),
		newAttr("display", TypeString, "A human-readable name of the member."),
	)),
}}

// enterpriseSchema is RFC 7643's enterprise user extension (manager's
// displayName, a read-only copy of another user's name, is left out).
var enterpriseSchema = &Schema{ID: SchemaEnterprise, Name: "EnterpriseUser", Description: "Enterprise User", Attributes: []*Attribute{
	newAttr("employeeNumber", TypeString, "Numeric or alphanumeric identifier assigned to a person."),
	newAttr("costCenter", TypeString, "Identifies the name of a cost center."),
	newAttr("organization", TypeString, "Identifies the name of an organization."),
	newAttr("division", TypeString, "Identifies the name of a division."),
	newAttr("department", TypeString, "Identifies the name of a department."),
	newAttr("manager", TypeComplex, "The user's manager.", subs(
		newAttr("value", TypeString, "The id of the SCIM resource representing the user's manager."),
		newAttr("$ref", TypeReference, "The URI of the SCIM resource representing the user's manager.", refs("User")),
	)),
}}

// accessSchema is keyfleet's access extension: where a person's access
// applies and when it ends.
var accessSchema = &Schema{ID: SchemaAccess, Name: "KeyfleetAccess", Description: "keyfleet access attributes", Attributes: []*Attribute{
	newAttr("site", TypeString, "The site (keyfleet site_id) the person's access applies to."),
	newAttr("end_date", TypeDateTime, "When the person's access ends (RFC 3339); once past, the user is a leaver."),
	newAttr("subject_id", TypeString, "keyfleet's pseudonymous subject id of the person, when the identity source "+
		"already knows it (credentials issued before identity sync); without it the id is a keyed hash of externalId "+
		"or the SCIM id. No whitespace, no e-mail address.", caseExact, unique),
	newAttr("source", TypeString, "The HR/tenant feed that manages this user (set by keyfleet identity import, "+
		"which deactivates the feed's users that a full import no longer lists); users an identity provider "+
		"pushes over SCIM have none.", caseExact),
}}

// userType and groupType are the resource types served.
var (
	userType = &ResourceType{Name: "User", Endpoint: "/Users", Description: "User Account", Schema: userSchema,
		Extensions: []Extension{{Schema: enterpriseSchema}, {Schema: accessSchema}}}
	groupType = &ResourceType{Name: "Group", Endpoint: "/Groups", Description: "Group", Schema: groupSchema}
)
