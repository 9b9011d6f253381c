//! Users and their companies: adding, listing, disabling and enabling users, issuing and
//! revoking their tokens. A token is shown once, when it is issued; only its
//! SHA-256 is stored.

use originlink_store::{Ctx, NewUser, Role, Store, User, UserChange, UserRecord};

use super::{Error, Kind, Result};

/// Longest user name, in characters.
pub const MAX_USER_NAME: usize = 100;
/// Longest company name, in characters.
pub const MAX_COMPANY_NAME: usize = 200;

/// A new API token: 32 random bytes, hex, with a recognisable prefix.
pub fn new_token() -> Result<String, ring::error::Unspecified> {
    let mut b = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)?;
    Ok(format!("olk_{}", originlink_store::hex(&b)))
}

/// A person's or a company's name as entered: trimmed, 1 to `max` characters, with no
/// control characters (newlines and tabs included) and no bidirectional overrides, which
/// would let a name print as something else in logs, lists and certificates.
pub fn clean_name(raw: &str, max: usize) -> Result<&str, String> {
    let name = raw.trim();
    let chars = name.chars().count();
    if chars == 0 {
        return Err("must not be empty".into());
    }
    if chars > max {
        return Err(format!("{chars} characters; at most {max}"));
    }
    let bidi = |c: char| matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
    if let Some(c) = name.chars().find(|&c| c.is_control() || bidi(c) || c == '\u{2028}' || c == '\u{2029}') {
        return Err(format!(
            "contains the control character U+{:04X}; use letters, digits and punctuation",
            c as u32
        ));
    }
    Ok(name)
}

/// Adds a user (creating its company on first use) and returns it with its token. Used by
/// the admin's API and console and by `originlink node add-user`, which has no signing key
/// loaded: it needs storage only.
///
/// Errors: `NAME_INVALID` (`name`); `COMPANY_NAME_INVALID`, `COMPANY_REQUIRED_FOR_EXPORTER`
/// (an exporter without one) and `COMPANY_ONLY_FOR_EXPORTER` (another role with one)
/// (`company`); `USER_EXISTS`; storage.
pub async fn add_user(
    store: &dyn Store,
    ctx: &Ctx,
    name: &str,
    role: Role,
    company: Option<&str>,
    country: &str,
) -> Result<(User, String)> {
    let name = clean_name(name, MAX_USER_NAME).map_err(|m| Error::invalid("NAME_INVALID", "name", m))?;
    let company = company
        .map(|c| clean_name(c, MAX_COMPANY_NAME))
        .transpose()
        .map_err(|m| Error::invalid("COMPANY_NAME_INVALID", "company", m))?;
    let company_id = match (role, company) {
        (Role::Exporter, Some(c)) => Some(match store.company_by_name(c).await? {
            Some(found) => found.id,
            None => store.create_company(ctx, c, country).await?.id,
        }),
        (Role::Exporter, None) => {
            return Err(Error::invalid(
                "COMPANY_REQUIRED_FOR_EXPORTER",
                "company",
                "an exporter needs --company",
            ));
        }
        (_, Some(_)) => {
            return Err(Error::invalid(
                "COMPANY_ONLY_FOR_EXPORTER",
                "company",
                "only exporters belong to a company",
            ));
        }
        (_, None) => None,
    };
    let token = new_token()
        .map_err(|_| Error::new(Kind::Internal, "RANDOM_UNAVAILABLE", "no random source for the token"))?;
    let user = store
        .create_user(
            ctx,
            NewUser {
                name: name.to_owned(),
                role,
                company_id,
                token_hash: originlink_store::token_hash(&token),
            },
        )
        .await?;
    tracing::info!(user = user.id, role = %user.role, "user created");
    Ok((user, token))
}

/// One user as an administrator sees it; `NOT_FOUND` for an unknown id.
pub async fn get(store: &dyn Store, id: i64) -> Result<UserRecord> {
    store.user(id).await?.ok_or_else(Error::not_found)
}

/// Every user of the node, by id (the admin's list): name, role, company, disabled, created.
pub async fn list(store: &dyn Store) -> Result<Vec<UserRecord>> {
    Ok(store.list_users().await?)
}

/// Disables or enables user `id`, or revokes its tokens, as `actor` (the acting user's id;
/// `None` for the operator's command line). Audited.
///
/// Errors: `CANNOT_DISABLE_SELF` (an admin disabling their own account: another admin must);
/// `USER_ALREADY_DISABLED`, `USER_NOT_DISABLED`; `NOT_FOUND`; storage.
pub async fn change(
    store: &dyn Store,
    ctx: &Ctx,
    actor: Option<i64>,
    id: i64,
    change: UserChange,
) -> Result<UserRecord> {
    if change == UserChange::Disable && actor == Some(id) {
        return Err(Error::new(
            Kind::Conflict,
            "CANNOT_DISABLE_SELF",
            "an admin cannot disable their own account; ask another admin, or use `originlink node user disable` on the node",
        ));
    }
    let user = store.change_user(ctx, id, change).await?;
    tracing::info!(user = user.id, change = ?change, "user changed");
    Ok(user)
}

/// Issues user `id` a new token, revoking its others, and returns it once (only its SHA-256
/// is stored). Audited as `user.token_issued`. Errors: `NOT_FOUND`; storage.
pub async fn issue_token(store: &dyn Store, ctx: &Ctx, id: i64) -> Result<(UserRecord, String)> {
    let token = new_token()
        .map_err(|_| Error::new(Kind::Internal, "RANDOM_UNAVAILABLE", "no random source for the token"))?;
    let user = store.replace_token(ctx, id, &originlink_store::token_hash(&token)).await?;
    tracing::info!(user = user.id, "token issued, the others revoked");
    Ok((user, token))
}
