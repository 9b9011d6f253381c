//! The route table and the OpenAPI 3.1 document served at `/api/openapi.json`. [`OPERATIONS`]
//! has one entry per operation: its handler, roles, body and answers. This is the one place
//! roles are declared: [`super::router`] routes exactly these entries behind a guard that lets
//! only these roles through (401 without a valid token, 403 for another role), and
//! [`document`] describes exactly them, so the three cannot drift apart; a snapshot test
//! (`tests/it/openapi.json`) catches unreviewed changes.

use axum::routing::{MethodRouter, get, post, put};
use serde_json::{Map, Value, json};

use originlink_store::Role;

use super::{admin, applications, customs, system};
use crate::app::AppState;

/// What a request body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// No body.
    None,
    /// JSON of the named schema.
    Json(&'static str),
    /// JSON of the named schema, or a UBL XML document.
    JsonOrXml(&'static str),
}

/// One documented operation.
#[derive(Debug, Clone, Copy)]
pub struct Operation {
    /// HTTP method, lower case.
    pub method: &'static str,
    /// Path, with `{id}` parameters.
    pub path: &'static str,
    /// The handler: the router is built from this table, so nothing is routed undocumented.
    pub handler: fn() -> MethodRouter<AppState>,
    /// Operation id.
    pub id: &'static str,
    /// One line.
    pub summary: &'static str,
    /// Roles allowed (empty: no authentication).
    pub roles: &'static [Role],
    /// Request body.
    pub body: Body,
    /// Query parameters: (name, required, JSON schema type).
    pub query: &'static [(&'static str, bool, &'static str)],
    /// Success status and response schema (`xml` for the signed document, `text` for
    /// metrics, `any` for free-form JSON).
    pub ok: (u16, &'static str),
    /// Error statuses besides 401/403 (every error body is `Error`).
    pub errors: &'static [u16],
}

const EXP: Role = Role::Exporter;
const OFF: Role = Role::IssuingOfficer;
const CUS: Role = Role::CustomsOfficer;
const ADM: Role = Role::Admin;
const ALL: &[Role] = &[EXP, OFF, CUS, ADM];
const APPLICATIONS_QUERY: &[(&str, bool, &str)] = &[
    ("limit", false, "integer"),
    ("before", false, "integer"),
    ("status", false, "string"),
    ("q", false, "string"),
    ("from", false, "string"),
    ("to", false, "string"),
];
const CERTIFICATES_QUERY: &[(&str, bool, &str)] = &[
    ("limit", false, "integer"),
    ("before", false, "integer"),
    ("status", false, "string"),
    ("number", false, "string"),
];
const RECEIVED_QUERY: &[(&str, bool, &str)] = &[
    ("limit", false, "integer"),
    ("before", false, "integer"),
    ("status", false, "string"),
    ("issuing_country", false, "string"),
    ("number", false, "string"),
    ("exporter", false, "string"),
    ("from", false, "string"),
    ("to", false, "string"),
];
const DECLARATIONS_QUERY: &[(&str, bool, &str)] = &[
    ("limit", false, "integer"),
    ("before", false, "integer"),
    ("number", false, "string"),
    ("importer", false, "string"),
    ("from", false, "string"),
    ("to", false, "string"),
    ("outcome", false, "string"),
];

/// Every operation of the node's API.
pub const OPERATIONS: &[Operation] = &[
    Operation {
        method: "post",
        path: "/api/v1/applications",
        handler: || post(applications::create_application),
        id: "createApplication",
        summary: "Create an application (edi3 JSON or UBL XML), optionally with a self-assessment",
        roles: &[EXP],
        body: Body::JsonOrXml("CreateApplication"),
        query: &[],
        ok: (201, "Application"),
        errors: &[400, 404, 409, 413, 415, 422],
    },
    Operation {
        method: "get",
        path: "/api/v1/applications",
        handler: || get(applications::list_applications),
        id: "listApplications",
        summary: "List applications (an exporter sees its company's only; an officer's list leaves drafts out unless status asks): status (comma-separated), q (company, user or certificate number), from/to (YYYY-MM-DD, inclusive)",
        roles: &[EXP, OFF],
        body: Body::None,
        query: APPLICATIONS_QUERY,
        ok: (200, "ApplicationList"),
        errors: &[400],
    },
    Operation {
        method: "get",
        path: "/api/v1/applications/{id}",
        handler: || get(applications::get_application),
        id: "getApplication",
        summary: "One application",
        roles: &[EXP, OFF],
        body: Body::None,
        query: &[],
        ok: (200, "Application"),
        errors: &[404],
    },
    Operation {
        method: "get",
        path: "/api/v1/applications/{id}/document",
        handler: || get(applications::application_document),
        id: "getApplicationDocument",
        summary: "The application's document exactly as submitted (JSON or XML)",
        roles: &[EXP, OFF],
        body: Body::None,
        query: &[],
        ok: (200, "document"),
        errors: &[404],
    },
    Operation {
        method: "post",
        path: "/api/v1/applications/{id}/submit",
        handler: || post(applications::submit_application),
        id: "submitApplication",
        summary: "Submit a draft application to the issuing authority",
        roles: &[EXP],
        body: Body::None,
        query: &[],
        ok: (200, "Application"),
        errors: &[404, 409],
    },
    Operation {
        method: "put",
        path: "/api/v1/applications/{id}",
        handler: || put(applications::edit_application),
        id: "editApplication",
        summary: "Edit a draft or returned application: replace its document and/or self-assessment",
        roles: &[EXP],
        body: Body::JsonOrXml("EditApplication"),
        query: &[],
        ok: (200, "Application"),
        errors: &[400, 404, 409, 413, 415, 422],
    },
    Operation {
        method: "post",
        path: "/api/v1/applications/{id}/withdraw",
        handler: || post(applications::withdraw_application),
        id: "withdrawApplication",
        summary: "Withdraw a draft, submitted or returned application (final)",
        roles: &[EXP],
        body: Body::None,
        query: &[],
        ok: (200, "Application"),
        errors: &[404, 409],
    },
    Operation {
        method: "post",
        path: "/api/v1/applications/{id}/copy",
        handler: || post(applications::copy_application),
        id: "copyApplication",
        summary: "Start a new draft from a rejected or withdrawn application (the old one stays as decided)",
        roles: &[EXP],
        body: Body::None,
        query: &[],
        ok: (201, "Application"),
        errors: &[404, 409],
    },
    Operation {
        method: "post",
        path: "/api/v1/applications/{id}/return",
        handler: || post(applications::return_application),
        id: "returnApplication",
        summary: "Return a submitted application to the exporter for correction, with a reason",
        roles: &[OFF],
        body: Body::Json("Reason"),
        query: &[],
        ok: (200, "Application"),
        errors: &[400, 404, 409, 413, 415],
    },
    Operation {
        method: "post",
        path: "/api/v1/applications/{id}/approve",
        handler: || post(applications::approve_application),
        id: "approveApplication",
        summary: "Approve: assign the number, sign with the authority key, store exactly as signed",
        roles: &[OFF],
        body: Body::None,
        query: &[],
        ok: (200, "Certificate"),
        errors: &[404, 409],
    },
    Operation {
        method: "post",
        path: "/api/v1/applications/{id}/reject",
        handler: || post(applications::reject_application),
        id: "rejectApplication",
        summary: "Reject a submitted application with a reason",
        roles: &[OFF],
        body: Body::Json("Reason"),
        query: &[],
        ok: (200, "Application"),
        errors: &[400, 404, 409, 413, 415],
    },
    Operation {
        method: "get",
        path: "/api/v1/certificates",
        handler: || get(applications::list_certificates),
        id: "listCertificates",
        summary: "List issued certificates (an exporter sees its company's only): status (issued, superseded, revoked), number (text in it)",
        roles: &[EXP, OFF],
        body: Body::None,
        query: CERTIFICATES_QUERY,
        ok: (200, "CertificateList"),
        errors: &[400],
    },
    Operation {
        method: "get",
        path: "/api/v1/certificates/{id}",
        handler: || get(applications::get_certificate),
        id: "getCertificate",
        summary: "One certificate",
        roles: &[EXP, OFF],
        body: Body::None,
        query: &[],
        ok: (200, "Certificate"),
        errors: &[404],
    },
    Operation {
        method: "get",
        path: "/api/v1/certificates/{id}/document",
        handler: || get(applications::certificate_document),
        id: "getCertificateDocument",
        summary: "The signed UBL XML, byte for byte as signed",
        roles: &[EXP, OFF],
        body: Body::None,
        query: &[],
        ok: (200, "xml"),
        errors: &[404],
    },
    Operation {
        method: "get",
        path: "/api/v1/certificates/{id}/pdf",
        handler: || get(applications::certificate_pdf),
        id: "getCertificatePdf",
        summary: "The certificate printed: A4, laid out like Form D or the RCEP form, with the verification QR code",
        roles: &[EXP, OFF],
        body: Body::None,
        query: &[("copy", false, "integer")],
        ok: (200, "pdf"),
        errors: &[400, 404, 409],
    },
    Operation {
        method: "post",
        path: "/api/v1/certificates/{id}/revoke",
        handler: || post(applications::revoke_certificate),
        id: "revokeCertificate",
        summary: "Revoke an issued certificate with a reason",
        roles: &[OFF],
        body: Body::Json("Reason"),
        query: &[],
        ok: (200, "Certificate"),
        errors: &[400, 404, 409, 413, 415],
    },
    Operation {
        method: "get",
        path: "/api/v1/certificates/{id}/statuses",
        handler: || get(applications::certificate_statuses),
        id: "certificateStatuses",
        summary: "What the importing country reported about this certificate (all versions), oldest first",
        roles: &[EXP, OFF],
        body: Body::None,
        query: &[],
        ok: (200, "StatusList"),
        errors: &[404],
    },
    Operation {
        method: "get",
        path: "/api/v1/received",
        handler: || get(applications::list_received),
        id: "listReceived",
        summary: "Certificates received from other countries, newest first: status (valid, invalid, superseded, revoked), issuing_country, number (text in it)",
        roles: &[CUS, OFF],
        body: Body::None,
        query: RECEIVED_QUERY,
        ok: (200, "ReceivedList"),
        errors: &[400],
    },
    Operation {
        method: "get",
        path: "/api/v1/received/{id}",
        handler: || get(applications::get_received),
        id: "getReceived",
        summary: "One received certificate with its verification status",
        roles: &[CUS, OFF],
        body: Body::None,
        query: &[],
        ok: (200, "Received"),
        errors: &[404],
    },
    Operation {
        method: "get",
        path: "/api/v1/received/{id}/document",
        handler: || get(applications::received_document),
        id: "getReceivedDocument",
        summary: "The received certificate exactly as it arrived",
        roles: &[CUS, OFF],
        body: Body::None,
        query: &[],
        ok: (200, "xml"),
        errors: &[404],
    },
    Operation {
        method: "get",
        path: "/api/v1/exchange",
        handler: || get(admin::exchange_status),
        id: "exchangeStatus",
        summary: "Outbox, dead letters, inbox, held and quarantined messages",
        roles: &[ADM],
        body: Body::None,
        query: &[],
        ok: (200, "any"),
        errors: &[],
    },
    Operation {
        method: "get",
        path: "/api/v1/exchange/outbox",
        handler: || get(admin::outbox),
        id: "outboxMessages",
        summary: "Outgoing messages not yet delivered (pending and dead), oldest first, with attempts, last error and next attempt",
        roles: &[ADM],
        body: Body::None,
        query: &[],
        ok: (200, "OutboxMessageList"),
        errors: &[],
    },
    Operation {
        method: "get",
        path: "/api/v1/exchange/dead",
        handler: || get(admin::dead_letters),
        id: "deadLetters",
        summary: "Messages that could not be delivered after every attempt, or were refused",
        roles: &[ADM],
        body: Body::None,
        query: &[],
        ok: (200, "any"),
        errors: &[],
    },
    Operation {
        method: "post",
        path: "/api/v1/exchange/dead/{id}/retry",
        handler: || post(admin::retry_dead),
        id: "retryDeadLetter",
        summary: "Send a dead letter again (attempts start over)",
        roles: &[ADM],
        body: Body::None,
        query: &[],
        ok: (200, "any"),
        errors: &[404],
    },
    Operation {
        method: "get",
        path: "/api/v1/exchange/quarantine",
        handler: || get(admin::quarantined),
        id: "quarantinedMessages",
        summary: "Inbound messages that can never be processed, with the reason (never retried)",
        roles: &[ADM],
        body: Body::None,
        query: &[],
        ok: (200, "InboxRecordList"),
        errors: &[],
    },
    Operation {
        method: "get",
        path: "/api/v1/exchange/refused",
        handler: || get(admin::refused),
        id: "refusedMessages",
        summary: "Inbound messages refused, with the code (e.g. a sender that may not say them)",
        roles: &[ADM],
        body: Body::None,
        query: &[],
        ok: (200, "RefusalList"),
        errors: &[],
    },
    Operation {
        method: "post",
        path: "/api/v1/declarations",
        handler: || post(customs::create_declaration),
        id: "createDeclaration",
        summary: "File an import declaration; every line is decided against received certificates",
        roles: &[CUS],
        body: Body::Json("Declaration"),
        query: &[],
        ok: (201, "any"),
        errors: &[400, 409, 413, 415, 422],
    },
    Operation {
        method: "get",
        path: "/api/v1/declarations",
        handler: || get(customs::list_declarations),
        id: "listDeclarations",
        summary: "The officer's queue: declarations, highest risk first: number and importer (text in them), from/to (declaration date YYYY-MM-DD, inclusive), outcome (a line pending, granted, denied or not-claimed)",
        roles: &[CUS],
        body: Body::None,
        query: DECLARATIONS_QUERY,
        ok: (200, "any"),
        errors: &[400],
    },
    Operation {
        method: "get",
        path: "/api/v1/declarations/{id}",
        handler: || get(customs::get_declaration),
        id: "getDeclaration",
        summary: "One declaration: lines with outcome, reason codes, duty; risk score with reasons",
        roles: &[CUS],
        body: Body::None,
        query: &[],
        ok: (200, "any"),
        errors: &[404],
    },
    Operation {
        method: "post",
        path: "/api/v1/declarations/{id}/lines/{line}/decision",
        handler: || post(customs::decide_line),
        id: "decideLine",
        summary: "An officer re-decides a line now, or overrides its outcome, with a reason (audited; the status goes back to the issuing country)",
        roles: &[CUS],
        body: Body::Json("LineDecision"),
        query: &[],
        ok: (200, "any"),
        errors: &[400, 404, 409, 413, 415, 422],
    },
    Operation {
        method: "get",
        path: "/api/v1/revenue",
        handler: || get(customs::revenue),
        id: "revenue",
        summary: "Preference granted and duty collected over decided lines, per currency",
        roles: &[CUS, ADM],
        body: Body::None,
        query: &[("from", true, "string"), ("to", true, "string")],
        ok: (200, "any"),
        errors: &[400, 422],
    },
    Operation {
        method: "post",
        path: "/api/v1/verifications",
        handler: || post(customs::raise_verification),
        id: "raiseVerification",
        summary: "Ask the issuing country to verify a received certificate (deadline from the agreement)",
        roles: &[CUS],
        body: Body::Json("RaiseVerification"),
        query: &[],
        ok: (201, "any"),
        errors: &[400, 404, 409, 413, 415],
    },
    Operation {
        method: "get",
        path: "/api/v1/verifications",
        handler: || get(customs::list_verifications),
        id: "listVerifications",
        summary: "Verification requests (direction=incoming|outgoing, overdue=true)",
        roles: &[CUS, OFF],
        body: Body::None,
        query: &[("direction", false, "string"), ("overdue", false, "boolean")],
        ok: (200, "any"),
        errors: &[400],
    },
    Operation {
        method: "post",
        path: "/api/v1/verifications/{id}/answer",
        handler: || post(customs::answer_verification),
        id: "answerVerification",
        summary: "The issuing officer answers a verification request: confirmed or denied",
        roles: &[OFF],
        body: Body::Json("Answer"),
        query: &[],
        ok: (200, "any"),
        errors: &[400, 404, 409, 413, 415],
    },
    Operation {
        method: "post",
        path: "/api/v1/qualify",
        handler: || post(system::qualify),
        id: "qualify",
        summary: "Evaluate a bill of materials against the rules of origin",
        roles: ALL,
        body: Body::Json("QualifyRequest"),
        query: &[],
        ok: (200, "any"),
        errors: &[400, 413, 415, 422],
    },
    Operation {
        method: "get",
        path: "/api/v1/rules",
        handler: || get(system::rules),
        id: "getRule",
        summary: "The product-specific rule of an agreement for an HS code",
        roles: ALL,
        body: Body::None,
        query: &[("agreement", true, "string"), ("hs", true, "string")],
        ok: (200, "Rule"),
        errors: &[400, 404],
    },
    Operation {
        method: "post",
        path: "/api/v1/users",
        handler: || post(admin::create_user),
        id: "createUser",
        summary: "Create a user; the token is returned once",
        roles: &[ADM],
        body: Body::Json("CreateUser"),
        query: &[],
        ok: (201, "CreatedUser"),
        errors: &[400, 409, 413, 415],
    },
    Operation {
        method: "get",
        path: "/api/v1/users",
        handler: || get(admin::list_users),
        id: "listUsers",
        summary: "List users: id, name, role, company, disabled, created, active tokens",
        roles: &[ADM],
        body: Body::None,
        query: &[],
        ok: (200, "UserList"),
        errors: &[],
    },
    Operation {
        method: "post",
        path: "/api/v1/users/{id}/disable",
        handler: || post(admin::disable_user),
        id: "disableUser",
        summary: "Disable a user: its tokens answer 401 until it is enabled (not one's own account)",
        roles: &[ADM],
        body: Body::None,
        query: &[],
        ok: (200, "UserRecord"),
        errors: &[404, 409],
    },
    Operation {
        method: "post",
        path: "/api/v1/users/{id}/enable",
        handler: || post(admin::enable_user),
        id: "enableUser",
        summary: "Enable a disabled user",
        roles: &[ADM],
        body: Body::None,
        query: &[],
        ok: (200, "UserRecord"),
        errors: &[404, 409],
    },
    Operation {
        method: "put",
        path: "/api/v1/users/{id}/email",
        handler: || put(admin::set_email),
        id: "setUserEmail",
        summary: "Set where a user's notifications are e-mailed (null or empty: nowhere)",
        roles: &[ADM],
        body: Body::Json("SetEmail"),
        query: &[],
        ok: (200, "UserRecord"),
        errors: &[400, 404, 413, 415],
    },
    Operation {
        method: "get",
        path: "/api/v1/notifications",
        handler: || get(admin::notifications_feed),
        id: "listNotifications",
        summary: "The caller's notifications, newest first; they count as seen once listed",
        roles: ALL,
        body: Body::None,
        query: &[("before", false, "integer"), ("limit", false, "integer")],
        ok: (200, "NotificationFeed"),
        errors: &[400],
    },
    Operation {
        method: "post",
        path: "/api/v1/users/{id}/tokens",
        handler: || post(admin::issue_token),
        id: "issueToken",
        summary: "Issue a user a new token, returned once; the user's other tokens are revoked",
        roles: &[ADM],
        body: Body::None,
        query: &[],
        ok: (201, "IssuedToken"),
        errors: &[404],
    },
    Operation {
        method: "post",
        path: "/api/v1/users/{id}/tokens/revoke",
        handler: || post(admin::revoke_tokens),
        id: "revokeTokens",
        summary: "Revoke every token of a user (issue a new one to let it in again)",
        roles: &[ADM],
        body: Body::None,
        query: &[],
        ok: (200, "UserRecord"),
        errors: &[404],
    },
    Operation {
        method: "get",
        path: "/healthz",
        handler: || get(system::healthz),
        id: "health",
        summary: "Liveness and storage check",
        roles: &[],
        body: Body::None,
        query: &[],
        ok: (200, "any"),
        errors: &[503],
    },
    Operation {
        method: "get",
        path: "/metrics",
        handler: || get(system::metrics),
        id: "metrics",
        summary: "Prometheus metrics",
        roles: &[],
        body: Body::None,
        query: &[],
        ok: (200, "text"),
        errors: &[],
    },
    Operation {
        method: "get",
        path: "/api/openapi.json",
        handler: || get(openapi),
        id: "openapi",
        summary: "This document",
        roles: &[],
        body: Body::None,
        query: &[],
        ok: (200, "any"),
        errors: &[],
    },
];

/// `GET /api/openapi.json`: [`document`].
pub(crate) async fn openapi() -> axum::response::Response {
    use axum::response::IntoResponse;
    axum::Json(document()).into_response()
}

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn schemas() -> Value {
    let id = json!({ "type": "integer", "format": "int64" });
    let opt_id = json!({ "type": ["integer", "null"], "format": "int64" });
    let opt_text = json!({ "type": ["string", "null"] });
    let notification_feed = json!({
        "type": "object",
        "required": ["items", "unseen", "next"],
        "properties": {
            "items": { "type": "array", "items": {
                "type": "object",
                "required": ["id", "audience", "kind", "link", "args", "at", "text", "unseen"],
                "properties": {
                    "id": { "type": "integer" }, "audience": { "type": "string" },
                    "kind": { "type": "string" }, "link": { "type": "string" },
                    "args": { "type": "string" }, "at": { "type": "string" },
                    "text": { "type": "string" }, "unseen": { "type": "boolean" }
                }
            } },
            "unseen": { "type": "integer" },
            "next": { "type": ["integer", "null"] }
        }
    });
    // Built apart: one `json!` this deep would pass the macro recursion limit.
    let declaration = json!({
        "description": "An import declaration (docs/reason-codes.md); amounts and quantities are decimal strings",
        "type": "object",
        "additionalProperties": false,
        "required": ["number", "importer", "importing_country", "declaration_date", "lines"],
        "properties": {
            "number": { "type": "string" },
            "importer": {
                "type": "object", "additionalProperties": false, "required": ["name"],
                "properties": { "name": { "type": "string" }, "id": opt_text }
            },
            "importing_country": { "type": "string", "description": "ISO 3166-1 alpha-2" },
            "declaration_date": { "type": "string", "format": "date" },
            "lines": {
                "type": "array", "minItems": 1,
                "items": {
                    "type": "object", "additionalProperties": false,
                    "required": ["line_no", "hs_code", "description", "quantity", "unit", "customs_value", "origin_country", "eco"],
                    "properties": {
                        "line_no": { "type": "integer", "minimum": 1, "maximum": 999 },
                        "hs_code": { "type": "string", "description": "HS 2022, 6 to 10 digits, dots allowed" },
                        "description": { "type": "string" },
                        "quantity": { "type": "string" },
                        "unit": { "type": "string", "description": "UN/ECE Rec. 20 code, e.g. KGM, C62" },
                        "customs_value": {
                            "type": "object", "additionalProperties": false, "required": ["amount", "currency"],
                            "properties": { "amount": { "type": "string" }, "currency": { "type": "string" } }
                        },
                        "origin_country": { "type": "string" },
                        "claimed_agreement": { "enum": ["ATIGA", "RCEP", null] },
                        "eco": {
                            "oneOf": [
                                { "const": "PENDING" },
                                {
                                    "type": "object", "additionalProperties": false, "required": ["issuing_country", "number"],
                                    "properties": { "issuing_country": { "type": "string" }, "number": { "type": "string" } }
                                }
                            ]
                        },
                        "invoice_number": opt_text
                    }
                }
            }
        }
    });
    let qualify_request = json!({
        "description": "The `originlink qualify` input (docs/rules-of-origin.md); money and percentages are decimal strings",
        "type": "object",
        "additionalProperties": false,
        "required": ["agreement", "exporting_country", "product"],
        "properties": {
            "agreement": { "type": "string", "description": "ATIGA, RCEP or GENERIC" },
            "exporting_country": { "type": "string" },
            "product": {
                "type": "object", "additionalProperties": false, "required": ["hs"],
                "properties": { "hs": { "type": "string" }, "description": { "type": "string" }, "weight_kg": { "type": "string" } }
            },
            "rule": { "type": "string", "description": "A rule in the rule language; default: the agreement's product-specific rule" },
            "method": { "type": "string" },
            "valuation": {
                "type": "object", "additionalProperties": false,
                "properties": { "basis": { "type": "string" }, "value": { "type": "string" }, "currency": { "type": "string" } }
            },
            "costs": {
                "type": "object", "additionalProperties": false,
                "properties": {
                    "direct_labour": { "type": "string" }, "direct_overhead": { "type": "string" },
                    "profit": { "type": "string" }, "other": { "type": "string" }
                }
            },
            "materials": {
                "type": "array",
                "items": {
                    "type": "object", "additionalProperties": false, "required": ["name", "hs", "value", "status"],
                    "properties": {
                        "name": { "type": "string" }, "hs": { "type": "string" }, "value": { "type": "string" },
                        "origin": { "type": "string" }, "status": { "type": "string" },
                        "rvc": { "type": "string" }, "weight_kg": { "type": "string" }
                    }
                }
            },
            "operations": { "type": "array", "items": { "type": "string" } },
            "wholly_obtained": { "type": "boolean" },
            "de_minimis_percent": { "type": "string" }
        }
    });
    json!({
        "Error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": { "type": "string" },
                "message": { "type": "string" },
                "field": { "type": "string" }
            }
        },
        "CreateApplication": {
            "type": "object",
            "additionalProperties": false,
            "required": ["document"],
            "properties": {
                "document": { "description": "edi3 JSON object, or UBL 2.4 XML as a string", "type": ["object", "string"] },
                "self_assessment": { "$ref": "#/components/schemas/QualifyRequest" },
                "replaces": opt_id,
                "back_to_back_of": opt_id
            }
        },
        "EditApplication": {
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "document": { "description": "edi3 JSON object, or UBL 2.4 XML as a string", "type": ["object", "string"] },
                "self_assessment": { "$ref": "#/components/schemas/QualifyRequest" }
            }
        },
        "Application": {
            "type": "object",
            "required": ["id", "company_id", "status", "format", "created_at", "updated_at", "warnings"],
            "properties": {
                "id": id, "company_id": id,
                "status": { "enum": ["draft", "submitted", "approved", "rejected", "returned", "withdrawn"] },
                "format": { "enum": ["xml", "json"] },
                "self_assessment": {}, "assessment": {},
                "replaces": opt_id, "back_to_back_of": opt_id,
                "reason": { "description": "Why it was rejected or returned for correction", "type": ["string", "null"] },
                "certificate_id": opt_id,
                "certificate_status": {
                    "description": "What became of the certificate issued from it",
                    "enum": ["issued", "superseded", "revoked", null]
                },
                "created_at": { "type": "string" }, "updated_at": { "type": "string" },
                "warnings": {
                    "description": "What the issuing officer should look at before approving",
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["code", "message", "field"],
                        "properties": {
                            "code": { "enum": ["EXPORTER_NOT_APPLICANT", "ASSESSMENT_NOT_ORIGINATING", "ASSESSMENT_OTHER_PRODUCT", "ASSESSMENT_OTHER_AGREEMENT"] },
                            "message": { "type": "string" }, "field": { "type": "string" }
                        }
                    }
                }
            }
        },
        "ApplicationList": { "type": "array", "items": reference("Application") },
        "Certificate": {
            "type": "object",
            "required": ["id", "application_id", "company_id", "issuer", "number", "version", "status", "issued_at", "sha256", "document"],
            "properties": {
                "id": id, "application_id": id, "company_id": id,
                "issuer": { "type": "string" }, "number": { "type": "string" },
                "version": id,
                "status": { "enum": ["issued", "superseded", "revoked"] },
                "supersedes": opt_id, "issued_at": { "type": "string" }, "revoked_reason": opt_text,
                "sha256": { "type": "string" }, "document": { "type": "string" },
                "remote_status": opt_text,
                "status_history": {
                    "description": "GET one certificate: every status the importing country reported about this version, oldest first",
                    "type": "array", "items": reference("Status")
                },
                "utilization": {
                    "description": "GET one certificate: the latest utilization the importing country reported",
                    "enum": ["partially", "fully"]
                }
            }
        },
        "CertificateList": { "type": "array", "items": reference("Certificate") },
        "Status": {
            "type": "object",
            "required": ["number", "version", "from_country", "status", "code", "at"],
            "properties": {
                "number": { "type": "string" }, "version": id, "from_country": { "type": "string" },
                "status": { "type": "string" }, "code": { "type": "string" }, "detail": {},
                "message_id": { "type": "string" }, "at": { "type": "string" }
            }
        },
        "StatusList": { "type": "array", "items": reference("Status") },
        "Received": {
            "type": "object",
            "required": ["id", "issuing_country", "number", "version", "status", "received_at", "document"],
            "properties": {
                "id": id, "issuing_country": { "type": "string" }, "number": { "type": "string" },
                "version": id, "status": { "enum": ["valid", "invalid", "superseded", "revoked"] },
                "verdict": opt_text, "revoked_reason": opt_text, "received_at": { "type": "string" },
                "document": { "type": "string" },
                "agreement": { "description": "One certificate only (not in lists), when it reads", "type": "string" },
                "exporter": { "type": "object", "properties": { "name": { "type": "string" }, "country": { "type": "string" } } },
                "consignee": { "type": "object", "properties": { "name": { "type": "string" }, "country": { "type": "string" } } },
                "goods": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "item": { "type": "integer" }, "hs": { "type": "string" }, "description": { "type": "string" },
                            "quantity": { "type": "string" }, "unit": { "type": "string" },
                            "remaining": { "description": "What declarations have not used yet", "type": "string" },
                            "origin_criterion": { "type": "string" }
                        }
                    }
                }
            }
        },
        "ReceivedList": { "type": "array", "items": reference("Received") },
        "InboxRecord": {
            "type": "object",
            "required": ["message_id", "from_country", "kind", "state", "received_at", "updated_at"],
            "properties": {
                "message_id": { "type": "string" }, "from_country": { "type": "string" },
                "kind": { "type": "string" }, "state": { "enum": ["applied", "held", "duplicate", "quarantined"] },
                "reason": opt_text, "received_at": { "type": "string" }, "updated_at": { "type": "string" }
            }
        },
        "OutboxMessage": {
            "type": "object",
            "required": ["seq", "id", "recipient", "kind", "cert_key", "attempts", "created_at", "next_attempt_at", "last_error", "dead"],
            "properties": {
                "seq": { "type": "integer" }, "id": { "type": "string" }, "recipient": { "type": "string" },
                "kind": { "type": "string" }, "cert_key": opt_text, "attempts": { "type": "integer" },
                "created_at": { "type": "string" },
                "next_attempt_at": { "type": "string", "description": "Not sent before; while a worker holds it, the end of its lease" },
                "last_error": opt_text, "dead": { "type": "boolean", "description": "Given up on: POST /api/v1/exchange/dead/{id}/retry" }
            }
        },
        "OutboxMessageList": { "type": "array", "items": reference("OutboxMessage") },
        "InboxRecordList": { "type": "array", "items": reference("InboxRecord") },
        "Refusal": {
            "type": "object",
            "required": ["message_id", "from_country", "kind", "via", "code", "reason", "at"],
            "properties": {
                "message_id": { "type": "string" }, "from_country": { "type": "string" },
                "kind": { "type": "string" }, "via": { "type": "string" }, "code": { "type": "string" },
                "reason": { "type": "string" }, "at": { "type": "string" }
            }
        },
        "RefusalList": { "type": "array", "items": reference("Refusal") },
        "Declaration": declaration,
        "RaiseVerification": {
            "type": "object", "additionalProperties": false,
            "required": ["issuing_country", "number", "questions"],
            "properties": {
                "issuing_country": { "type": "string" }, "number": { "type": "string" },
                "questions": { "type": "array", "items": { "type": "string" } },
                "deadline_days": { "type": "integer" }
            }
        },
        "Answer": {
            "type": "object", "additionalProperties": false, "required": ["answer", "outcome"],
            "properties": { "answer": { "type": "string" }, "outcome": { "enum": ["confirmed", "denied"] } }
        },
        "LineDecision": {
            "description": "`redecide`: the rules run again now; `override`: the line is granted or denied as `outcome` says. The reason is kept in the audit log.",
            "type": "object",
            "additionalProperties": false,
            "required": ["action", "reason"],
            "properties": {
                "action": { "enum": ["redecide", "override"] },
                "outcome": { "enum": ["granted", "denied"] },
                "reason": { "type": "string", "minLength": 1, "maxLength": 1000 }
            }
        },
        "Reason": {
            "type": "object",
            "additionalProperties": false,
            "required": ["reason"],
            "properties": { "reason": { "type": "string", "minLength": 1, "maxLength": 1000 } }
        },
        "QualifyRequest": qualify_request,
        "Rule": {
            "type": "object",
            "required": ["agreement", "hs", "matched", "rule", "source"],
            "properties": {
                "agreement": { "type": "string" }, "hs": { "type": "string" }, "matched": { "type": "string" },
                "rule": { "type": "string" }, "source": { "type": "string" }
            }
        },
        "CreateUser": {
            "type": "object",
            "additionalProperties": false,
            "required": ["name", "role"],
            "properties": {
                "name": { "type": "string", "minLength": 1, "maxLength": 100 },
                "role": { "enum": ["exporter", "issuing-officer", "customs-officer", "admin"] },
                "company": opt_text
            }
        },
        "UserRecord": {
            "type": "object",
            "required": ["id", "name", "role", "company", "disabled", "disabled_at", "created_at", "password_set", "active_tokens", "email"],
            "properties": {
                "id": { "type": "integer" }, "name": { "type": "string" },
                "role": { "enum": ["exporter", "issuing-officer", "customs-officer", "admin"] },
                "company": opt_text, "disabled": { "type": "boolean" }, "disabled_at": opt_text,
                "created_at": { "type": "string" }, "password_set": { "type": "boolean" },
                "active_tokens": { "type": "integer" }, "email": opt_text
            }
        },
        "UserList": { "type": "array", "items": reference("UserRecord") },
        "SetEmail": {
            "type": "object",
            "additionalProperties": false,
            "properties": { "email": opt_text }
        },
        "NotificationFeed": notification_feed,
        "IssuedToken": {
            "type": "object",
            "required": ["user", "token"],
            "properties": { "user": reference("UserRecord"), "token": { "type": "string" } }
        },
        "CreatedUser": {
            "type": "object",
            "required": ["user", "token"],
            "properties": { "user": { "type": "object" }, "token": { "type": "string" } }
        }
    })
}

fn status_text(code: u16) -> &'static str {
    match code {
        200 => "OK",
        201 => "Created",
        400 => "Malformed body, unknown field or invalid value",
        401 => "No valid bearer token",
        403 => "The role may not do this",
        404 => "Not found (also another company's record)",
        409 => "Invalid transition",
        413 => "Body over the limit",
        415 => "Unsupported media type",
        422 => "Document or self-assessment invalid",
        503 => "Storage unavailable",
        _ => "Error",
    }
}

/// The whole OpenAPI 3.1 document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for op in OPERATIONS {
        let mut o = Map::new();
        o.insert("operationId".into(), op.id.into());
        o.insert("summary".into(), op.summary.into());
        if !op.roles.is_empty() {
            o.insert(
                "description".into(),
                format!("Roles: {}.", op.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", "))
                    .into(),
            );
            o.insert("security".into(), json!([{ "bearer": [] }]));
        } else {
            o.insert("security".into(), json!([]));
        }
        let mut params = vec![];
        if op.path.contains("{id}") {
            // Dead letters are named by their message id (a UUID); every other record by number.
            let schema = if op.path.starts_with("/api/v1/exchange/") {
                json!({ "type": "string" })
            } else {
                json!({ "type": "integer", "format": "int64" })
            };
            params.push(json!({ "name": "id", "in": "path", "required": true, "schema": schema }));
        }
        if op.path.contains("{line}") {
            let schema = json!({ "type": "integer", "format": "int32" });
            params.push(json!({ "name": "line", "in": "path", "required": true, "schema": schema }));
        }
        for (name, required, kind) in op.query {
            params.push(
                json!({ "name": name, "in": "query", "required": required, "schema": { "type": kind } }),
            );
        }
        if !params.is_empty() {
            o.insert("parameters".into(), Value::Array(params));
        }
        match op.body {
            Body::None => {}
            Body::Json(s) => {
                o.insert(
                    "requestBody".into(),
                    json!({ "required": true, "content": { "application/json": { "schema": reference(s) } } }),
                );
            }
            Body::JsonOrXml(s) => {
                o.insert(
                    "requestBody".into(),
                    json!({ "required": true, "content": {
                        "application/json": { "schema": reference(s) },
                        "application/xml": { "schema": { "type": "string" } }
                    } }),
                );
            }
        }
        let mut responses = Map::new();
        let ok = match op.ok.1 {
            "xml" => json!({ "application/xml": { "schema": { "type": "string" } } }),
            "pdf" => json!({ "application/pdf": { "schema": { "type": "string", "format": "binary" } } }),
            "document" => json!({
                "application/json": { "schema": { "type": "object" } },
                "application/xml": { "schema": { "type": "string" } }
            }),
            "text" => json!({ (crate::metrics::Metrics::CONTENT_TYPE): { "schema": { "type": "string" } } }),
            "any" => json!({ "application/json": { "schema": {} } }),
            s => json!({ "application/json": { "schema": reference(s) } }),
        };
        responses.insert(op.ok.0.to_string(), json!({ "description": status_text(op.ok.0), "content": ok }));
        let mut errors: Vec<u16> = op.errors.to_vec();
        if !op.roles.is_empty() {
            errors.extend([401, 403]);
        }
        errors.sort();
        for e in errors {
            responses.insert(
                e.to_string(),
                json!({ "description": status_text(e), "content": { "application/json": { "schema": reference("Error") } } }),
            );
        }
        o.insert("responses".into(), Value::Object(responses));
        let entry = paths.entry(op.path.to_owned()).or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = entry {
            m.insert(op.method.to_owned(), Value::Object(o));
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "OriginLink node API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The country node: issuance of electronic certificates of origin. Every error is JSON {code, message, field?}."
        },
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } }
        }
    })
}
