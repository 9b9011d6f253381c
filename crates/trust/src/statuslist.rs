//! Certificate status lists: what an issuing authority says of its certificates that are no
//! longer good, like a CRL for documents. A JSON document signed by the authority's
//! document-signing key (detached JWS over its RFC 8785 form, `x5c` = the signing certificate),
//! accepted only under the trust policy a document of that issuer would be
//! ([`StatusList::verified`]), and applied to a verdict by [`with_status`]. Also the check
//! code printed on a certificate ([`check_code`]).
//!
//! A certificate absent from a list in force is not revoked or superseded *as of the list*;
//! past `next_update` the list answers nothing: [`ListedStatus::Unknown`], which a verifier turns
//! into *cannot verify*, never *valid* or *invalid*.

use chrono::{DateTime, Utc};
use originlink_model::CountryCode;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::jws;
use crate::keys::PrivateKey;
use crate::policy::{CannotVerifyReason, DocumentFacts, InvalidReason, Verdict, Verifier};
use crate::x509::Cert;

/// The value of [`StatusList::format`].
pub const FORMAT: &str = "originlink-status-list/1";

/// A status list (the signed content; the `"signature"` member is not part of it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusList {
    /// Always [`FORMAT`].
    pub format: String,
    /// The issuing country.
    pub issuer: CountryCode,
    /// Each list the issuer publishes has a higher sequence number.
    pub sequence: u64,
    /// When it was issued.
    pub issued_at: DateTime<Utc>,
    /// When the next list is due; after it, the list answers nothing.
    pub next_update: DateTime<Utc>,
    /// The certificates that are no longer good, by number and version.
    pub entries: Vec<Entry>,
}

/// One certificate version that is no longer good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// The certificate number.
    pub number: String,
    /// Its version.
    pub version: u32,
    /// Revoked or superseded.
    pub status: EntryStatus,
    /// Since when.
    pub since: DateTime<Utc>,
    /// Why, for people (a revocation's reason).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The version that replaced it (superseded only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded_by: Option<u32>,
}

/// What became of a listed certificate version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryStatus {
    /// Revoked by its issuer.
    Revoked,
    /// Replaced by a newer version.
    Superseded,
}

/// What a status list says of one certificate version at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListedStatus {
    /// Not listed, in a list in force: neither revoked nor superseded.
    Good,
    /// Listed.
    Listed(Entry),
    /// The list is past its `next_update` (or not yet issued): nothing can be said.
    Unknown,
}

/// Crockford's base-32 alphabet: no I, L, O or U, so a code read aloud or typed is not
/// mistaken.
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// The check code printed on a certificate beside its number: the first 50 bits of the
/// SHA-256 of the signed document, as ten Crockford base-32 characters in two groups
/// (`7K3M9-QX2VD`). Someone who holds only a number cannot guess it (2^50 codes per number);
/// someone who holds the document can always compute it.
pub fn check_code(signed_document: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, signed_document);
    let mut bits = 0u64;
    for b in &digest.as_ref()[..8] {
        bits = (bits << 8) | u64::from(*b);
    }
    let mut code = String::with_capacity(11);
    for i in 0..10 {
        if i == 5 {
            code.push('-');
        }
        let v = (bits >> (64 - 5 * (i + 1))) & 0x1f;
        code.push(char::from(CROCKFORD[v as usize]));
    }
    code
}

/// A check code as typed: trimmed, upper case, `O` read as `0` and `I`/`L` as `1`, the dash
/// optional; `None` when it cannot be one.
pub fn normalize_check_code(typed: &str) -> Option<String> {
    let chars: Vec<char> = typed
        .trim()
        .chars()
        .filter(|c| *c != '-' && *c != ' ')
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        })
        .collect();
    if chars.len() != 10 || !chars.iter().all(|c| c.is_ascii() && CROCKFORD.contains(&(*c as u8))) {
        return None;
    }
    Some(format!("{}-{}", chars[..5].iter().collect::<String>(), chars[5..].iter().collect::<String>()))
}

/// Which certificate a signed document is: its issuing country, number and version, as the
/// document says (read by the formats crate; XML or JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentId {
    /// The issuing (exporting) country.
    pub issuer: CountryCode,
    /// The certificate number.
    pub number: String,
    /// The version.
    pub version: u32,
    /// The importing country.
    pub importing_country: CountryCode,
    /// The issue date (box 12), once issued.
    pub issue_date: Option<chrono::NaiveDate>,
}

/// Reads which certificate a signed document is; `Err` says why it cannot be read.
pub fn identify(doc: &[u8]) -> std::result::Result<DocumentId, String> {
    let limits = originlink_formats::Limits::default();
    let (_, c) = originlink_formats::read(doc, &limits).map_err(|p| {
        let first = p.first().map(|p| format!("{}: {}", p.code, p.message)).unwrap_or_default();
        format!("not a readable certificate: {first}")
    })?;
    let number = c.number.as_ref().ok_or("the document has no certificate number")?.as_str().to_owned();
    Ok(DocumentId {
        issuer: c.exporting_country,
        number,
        version: c.version,
        importing_country: c.importing_country,
        issue_date: c.issue_date(),
    })
}

/// The verdict once the issuer's status list is taken into account: a valid signature on a
/// certificate the list names is INVALID (`REVOKED`, `SUPERSEDED`); without a list in force
/// for the issuer it is CANNOT_VERIFY `STATUS_UNKNOWN`, never VALID or INVALID. `list` is
/// the issuer's list already accepted ([`StatusList::verified`]), or `Err(why)` when none is
/// at hand. Verdicts that are not valid are returned as they are.
pub fn with_status(
    verdict: Verdict,
    id: &DocumentId,
    list: std::result::Result<&StatusList, &str>,
    now: DateTime<Utc>,
) -> Verdict {
    if !matches!(verdict, Verdict::Valid(_)) {
        return verdict;
    }
    let unknown =
        |detail: String| Verdict::CannotVerify { reason: CannotVerifyReason::StatusUnknown, detail };
    let list = match list {
        Ok(l) if l.issuer == id.issuer => l,
        Ok(l) => {
            return unknown(format!(
                "the status list is {}'s, the certificate was issued by {}",
                l.issuer, id.issuer
            ));
        }
        Err(why) => return unknown(why.to_owned()),
    };
    match list.status(&id.number, id.version, now) {
        ListedStatus::Good => verdict,
        ListedStatus::Unknown => unknown(format!(
            "{}'s status list (sequence {}) was due to be replaced on {}: it says nothing now",
            list.issuer,
            list.sequence,
            list.next_update.format("%Y-%m-%d %H:%M UTC")
        )),
        ListedStatus::Listed(e) => match e.status {
            EntryStatus::Revoked => Verdict::invalid(
                InvalidReason::Revoked,
                format!(
                    "{} version {} was revoked on {}{}",
                    id.number,
                    id.version,
                    e.since.format("%Y-%m-%d"),
                    e.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default()
                ),
            ),
            EntryStatus::Superseded => Verdict::invalid(
                InvalidReason::Superseded,
                format!(
                    "{} version {} was superseded{} on {}",
                    id.number,
                    id.version,
                    e.superseded_by.map(|v| format!(" by version {v}")).unwrap_or_default(),
                    e.since.format("%Y-%m-%d")
                ),
            ),
        },
    }
}

fn err(code: &'static str, message: String) -> Error {
    Error::TrustList { code, message }
}

impl StatusList {
    /// Signs the list with the issuer's document-signing key; `signing_cert_der` goes in `x5c`.
    pub fn sign(&self, key: &PrivateKey, signing_cert_der: &[u8]) -> Result<Vec<u8>> {
        let json = serde_json::to_vec(self).map_err(|e| Error::Json(e.to_string()))?;
        jws::sign_json(&json, key, &[signing_cert_der.to_vec()])
    }

    /// Reads a signed list and accepts it under the trust policy, as a document of its issuer
    /// would be: signed by a document-signing certificate that chains to the issuer's trust
    /// anchor in `verifier`, registered, unrevoked and valid on the day the list was issued.
    ///
    /// Error codes: `STATUS_LIST_MALFORMED`, `STATUS_LIST_UNSIGNED`, `STATUS_LIST_BAD_SIGNATURE`,
    /// or the verdict's code (`UNTRUSTED_ISSUER`, `COUNTRY_MISMATCH`, `TRUST_LIST_EXPIRED` …).
    pub fn verified(bytes: &[u8], verifier: &Verifier, now: DateTime<Utc>) -> Result<StatusList> {
        let malformed = |m: String| err("STATUS_LIST_MALFORMED", m);
        let signed = jws::split_signed_json(bytes).map_err(|e| malformed(e.to_string()))?;
        let jws = match signed.jws {
            None => return Err(err("STATUS_LIST_UNSIGNED", "the list has no \"signature\" member".into())),
            Some(Err(e)) => return Err(err("STATUS_LIST_BAD_SIGNATURE", format!("{e:?}"))),
            Some(Ok(j)) => j,
        };
        let Some(first) = jws.x5c.first() else {
            return Err(err("STATUS_LIST_BAD_SIGNATURE", "the signature names no certificate".into()));
        };
        let signer = Cert::from_der(first).map_err(|e| err("STATUS_LIST_BAD_SIGNATURE", e.to_string()))?;
        if jws.verify(&signed.canonical, &signer).is_err() {
            return Err(err(
                "STATUS_LIST_BAD_SIGNATURE",
                "the signature does not verify over the list".into(),
            ));
        }
        let list: StatusList =
            serde_json::from_value(signed.document).map_err(|e| malformed(e.to_string()))?;
        if list.format != FORMAT {
            return Err(malformed(format!("format {:?}, expected {FORMAT:?}", list.format)));
        }
        let facts = DocumentFacts { issuing_country: list.issuer, signing_date: list.issued_at.date_naive() };
        match verifier.check(first, &jws.x5c[1..], &facts, &jws.alg, now) {
            Verdict::Valid(_) => Ok(list),
            Verdict::Invalid { reason, detail } => Err(err(reason.code(), detail)),
            Verdict::CannotVerify { reason, detail } => Err(err(reason.code(), detail)),
        }
    }

    /// What the list says of `number` version `version` at `now`.
    pub fn status(&self, number: &str, version: u32, now: DateTime<Utc>) -> ListedStatus {
        if now >= self.next_update || now < self.issued_at {
            return ListedStatus::Unknown;
        }
        match self.entries.iter().find(|e| e.number == number && e.version == version) {
            Some(e) if e.since <= now => ListedStatus::Listed(e.clone()),
            _ => ListedStatus::Good,
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    fn list(now: DateTime<Utc>) -> StatusList {
        StatusList {
            format: FORMAT.into(),
            issuer: CountryCode::parse("KH").expect("KH"),
            sequence: 7,
            issued_at: now - Duration::hours(1),
            next_update: now + Duration::days(1),
            entries: vec![
                Entry {
                    number: "KH-2026-000002".into(),
                    version: 1,
                    status: EntryStatus::Revoked,
                    since: now - Duration::hours(2),
                    reason: Some("issued on a wrong invoice".into()),
                    superseded_by: None,
                },
                Entry {
                    number: "KH-2026-000001".into(),
                    version: 1,
                    status: EntryStatus::Superseded,
                    since: now - Duration::hours(3),
                    reason: None,
                    superseded_by: Some(2),
                },
            ],
        }
    }

    #[test]
    fn a_check_code_is_ten_unambiguous_characters_of_the_documents_hash() {
        let a = check_code(b"<Certificate>KH-2026-000001</Certificate>");
        let b = check_code(b"<Certificate>KH-2026-000002</Certificate>");
        assert_eq!(a.len(), 11);
        assert_eq!(a.as_bytes()[5], b'-');
        assert_ne!(a, b, "another document, another code");
        assert_eq!(
            a,
            check_code(b"<Certificate>KH-2026-000001</Certificate>"),
            "the same document, the same code"
        );
        assert!(a.chars().filter(|c| *c != '-').all(|c| CROCKFORD.contains(&(c as u8))), "{a}");
        assert!(!a.contains(['I', 'L', 'O', 'U']), "{a}");
        // Computed independently (Python: hashlib.sha256, the first 50 bits in 5-bit groups).
        assert_eq!(check_code(b""), "WERC8-GMRZG");
        assert_eq!(a, "G9CVE-837KJ");
        // As typed: lower case, no dash, O for 0, I or L for 1; anything else is no code.
        assert_eq!(normalize_check_code(" werc8gmrzg "), Some("WERC8-GMRZG".into()));
        assert_eq!(normalize_check_code("ab0i1-l2o34"), Some("AB011-12034".into()));
        for bad in ["", "WERC8-GMRZ", "WERC8-GMRZGG", "WERC8-GMRZU", "WERC8_GMRZG", "ウERC8-GMRZG"] {
            assert_eq!(normalize_check_code(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_signed_list_says_revoked_superseded_good_or_nothing_once_stale() {
        let now = DateTime::parse_from_rfc3339("2026-12-02T12:00:00Z").expect("time").with_timezone(&Utc);
        let today = now.date_naive();
        let kh = crate::keys::init_authority("KH", "Ministry of Commerce", today, None).expect("KH keys");
        let th =
            crate::keys::init_authority("TH", "Department of Foreign Trade", today, None).expect("TH keys");
        let cas = vec![
            Cert::from_der(&kh.ca.cert_der).expect("cert"),
            Cert::from_der(&th.ca.cert_der).expect("cert"),
        ];
        let verifier = Verifier::new(crate::TrustStore::from_cas(cas).expect("store"));
        let signed = list(now).sign(&kh.signing.key, &kh.signing.cert_der).expect("sign");
        let read = StatusList::verified(&signed, &verifier, now).expect("reads");
        assert_eq!(read, list(now));

        match read.status("KH-2026-000002", 1, now) {
            ListedStatus::Listed(e) => assert_eq!(e.status, EntryStatus::Revoked),
            other => panic!("revoked, not {other:?}"),
        }
        match read.status("KH-2026-000001", 1, now) {
            ListedStatus::Listed(e) => {
                assert_eq!((e.status, e.superseded_by), (EntryStatus::Superseded, Some(2)))
            }
            other => panic!("superseded, not {other:?}"),
        }
        assert_eq!(read.status("KH-2026-000001", 2, now), ListedStatus::Good, "the new version is good");
        assert_eq!(read.status("KH-2026-000003", 1, now), ListedStatus::Good);
        assert_eq!(read.status("KH-2026-000002", 1, now + Duration::days(2)), ListedStatus::Unknown, "stale");
        assert_eq!(
            read.status("KH-2026-000003", 1, now - Duration::hours(2)),
            ListedStatus::Unknown,
            "not yet issued"
        );

        // Another issuer's key, a changed entry, no signature: refused with their codes.
        let by_th = list(now).sign(&th.signing.key, &th.signing.cert_der).expect("sign");
        let code = |r: Result<StatusList>| r.expect_err("refused").code();
        assert_eq!(code(StatusList::verified(&by_th, &verifier, now)), "COUNTRY_MISMATCH");
        let tampered = String::from_utf8(signed.clone()).expect("utf-8").replace("wrong invoice", "typo");
        assert_eq!(
            code(StatusList::verified(tampered.as_bytes(), &verifier, now)),
            "STATUS_LIST_BAD_SIGNATURE"
        );
        let unsigned = serde_json::to_vec(&list(now)).expect("json");
        assert_eq!(code(StatusList::verified(&unsigned, &verifier, now)), "STATUS_LIST_UNSIGNED");
        assert_eq!(code(StatusList::verified(b"{", &verifier, now)), "STATUS_LIST_MALFORMED");
    }
}
