//! What people are told ([`crate::notify`] makes the notifications): each person's list,
//! what they have not seen yet, and where their e-mails go.

use originlink_store::{Ctx, Notification, Role, Store, User, UserRecord};
use serde::Serialize;
use serde_json::Value;

use super::{AppState, Error, Result};

/// The audience of everyone with role `r`: `role:<r>`.
pub fn role_audience(r: Role) -> String {
    format!("role:{}", r.as_str())
}

/// The audiences a person belongs to: their role's or, for an exporter, their company's
/// (twice, for the store's two-audience queries).
pub fn audiences(user: &User) -> [String; 2] {
    let role = role_audience(user.role);
    match (user.role, user.company_id) {
        (Role::Exporter, Some(c)) => [format!("company:{c}"), format!("company:{c}")],
        _ => [role.clone(), role],
    }
}

/// A page of a person's notifications, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct Feed {
    /// The notifications, each with `unseen` when newer than what the person had seen.
    pub items: Vec<Item>,
    /// How many the person had not seen.
    pub unseen: i64,
    /// The id to pass as `before` for the next page, when there may be one.
    pub next: Option<i64>,
}

/// One notification as a person reads it.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    /// The notification.
    #[serde(flatten)]
    pub notification: Notification,
    /// Its text.
    pub text: String,
    /// Not seen before this page showed it.
    pub unseen: bool,
}

/// The person's notifications before id `before` (newest first, `size` of them), marking
/// them seen.
pub async fn feed(state: &AppState, user: &User, before: Option<i64>, size: i64) -> Result<Feed> {
    let [a, b] = audiences(user);
    let seen = state.store.notifications_seen(user.id).await?;
    let unseen = state.store.notifications_after([&a, &b], seen, UNSEEN_CAP).await?;
    let list = state.store.notifications([&a, &b], before, size.clamp(1, 200)).await?;
    if let Some(newest) = list.first().map(|n| n.id) {
        state.store.see_notifications(user.id, newest).await?;
    }
    let next = (list.len() as i64 == size).then(|| list.last().map(|n| n.id)).flatten();
    let items = list
        .into_iter()
        .map(|n| {
            let args: Value = serde_json::from_str(&n.args).unwrap_or_default();
            let text = text(&n.kind, &args);
            Item { unseen: n.id > seen, text, notification: n }
        })
        .collect();
    Ok(Feed { items, unseen, next })
}

/// The text of a notification of `kind` with `args`, in English: what the console lists and
/// what the e-mail and the webhook say.
pub fn text(kind: &str, args: &Value) -> String {
    let a = |k: &str| {
        args.get(k)
            .and_then(|v| v.as_str().map(str::to_owned).or_else(|| Some(v.to_string())))
            .unwrap_or_default()
    };
    match kind {
        "application-submitted" => {
            format!("Application {} from {} is waiting for review.", a("id"), a("company"))
        }
        "application-approved" => {
            format!("Your application {} is approved: certificate {} is issued.", a("id"), a("number"))
        }
        "application-returned" => {
            format!("Your application {} was returned for correction: {}", a("id"), a("reason"))
        }
        "application-rejected" => format!("Your application {} was rejected: {}", a("id"), a("reason")),
        "certificate-status" => {
            let status = match a("status").as_str() {
                "received" => "received".to_owned(),
                "accepted" | "accepted-with-warnings" => "accepted".to_owned(),
                "rejected" => "rejected".to_owned(),
                "utilized-partially" => "partly used".to_owned(),
                "utilized-fully" => "used up".to_owned(),
                "revoked" => "revoked there".to_owned(),
                "replaced" => "replaced there".to_owned(),
                other => other.replace('-', " "),
            };
            format!("{} reported certificate {}: {status}.", a("from_country"), a("number"))
        }
        "certificate-revoked" => format!("Certificate {} is revoked: {}", a("number"), a("reason")),
        "received" => format!("Certificate {} arrived from {}.", a("number"), a("issuing_country")),
        "received-invalid" => format!(
            "Certificate {} arrived from {} and failed verification.",
            a("number"),
            a("issuing_country")
        ),
        "line-decided" => format!(
            "Line {} of declaration {} is decided now: {}.",
            a("line_no"),
            a("declaration"),
            a("outcome")
        ),
        "verification-overdue" => format!(
            "The verification of certificate {} asked of {} is past its deadline ({}).",
            a("number"),
            a("partner"),
            a("deadline")
        ),
        "dead-letter" => {
            format!("A {} message to {} could not be delivered: {}", a("kind"), a("recipient"), a("error"))
        }
        "member-unreachable" => format!(
            "{} has taken no message for {} minutes ({} attempts; last error: {}).",
            a("member"),
            a("minutes"),
            a("attempts"),
            a("error")
        ),
        _ => kind.to_owned(),
    }
}

/// New notifications are counted up to this many ("100 new" means 100 or more).
pub const UNSEEN_CAP: i64 = 100;

/// How many notifications the person has not seen, up to [`UNSEEN_CAP`].
pub async fn unseen(state: &AppState, user: &User) -> Result<i64> {
    let [a, b] = audiences(user);
    let seen = state.store.notifications_seen(user.id).await?;
    Ok(state.store.notifications_after([&a, &b], seen, UNSEEN_CAP).await?)
}

/// Sets where user `id`'s notifications are e-mailed (`None` or empty: nowhere), as `ctx`'s
/// actor. Not `name@domain.tld` without spaces: `EMAIL_INVALID` on `email`.
pub async fn set_email(store: &dyn Store, ctx: &Ctx, id: i64, email: Option<&str>) -> Result<UserRecord> {
    let email = email.map(str::trim).filter(|e| !e.is_empty());
    if let Some(e) = email
        && !valid_email(e)
    {
        return Err(Error::invalid(
            "EMAIL_INVALID",
            "email",
            "an e-mail address looks like name@example.org, without spaces",
        ));
    }
    Ok(store.set_email(ctx, id, email.map(str::to_owned)).await?)
}

/// Longest e-mail address kept (RFC 5321's path limit).
pub const MAX_EMAIL: usize = 254;

/// `local@domain.tld`: one `@`, a dot in the domain, printable ASCII without spaces, angle
/// brackets, quotes or commas (it goes into an SMTP command as it is).
pub fn valid_email(e: &str) -> bool {
    let Some((local, domain)) = e.split_once('@') else { return false };
    e.len() <= MAX_EMAIL
        && !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && e.bytes().all(|b| b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'"' | b'\\' | b','))
}

#[cfg(test)]
mod tests {
    use super::valid_email;

    #[test]
    fn an_address_that_could_break_an_smtp_command_is_refused() {
        assert!(valid_email("customs@moc.gov.kh"));
        for bad in [
            "",
            "a",
            "a@b",
            "@b.kh",
            "a@.kh",
            "a@kh.",
            "a b@c.kh",
            "a@c.kh>\r\nRCPT TO:<x@y.z",
            "a,b@c.kh",
            "a@b@c.kh",
        ] {
            assert!(!valid_email(bad), "{bad:?}");
        }
        assert!(!valid_email(&format!("{}@c.kh", "a".repeat(260))));
    }
}
