//! Companies and users, written once for both backends (a backend implements [`UsersTx`]):
//! creating them, disabling and enabling users, issuing and revoking their tokens. Only a
//! token's SHA-256 is ever stored; a disabled user's tokens and revoked tokens do not
//! authenticate (the backends' `user_by_token_hash`).

use crate::audit::{self, AuditTx, PendingEvent};
use crate::model::{Company, Ctx, NewUser, User, UserChange, UserRecord};
use crate::{Result, StoreError, timestamp};

/// What creating companies and users needs from a backend's open transaction.
pub(crate) trait UsersTx: AuditTx {
    /// Inserts a company; `None` when the name is taken.
    async fn insert_company(&mut self, name: &str, country: &str, at: &str) -> Result<Option<i64>>;
    /// Inserts a user; `None` when the name is taken.
    async fn insert_user(&mut self, u: &NewUser, at: &str) -> Result<Option<i64>>;
    /// Inserts the token (its hash) of a user.
    async fn insert_token(&mut self, hash: &[u8; 32], user_id: i64, at: &str) -> Result<()>;
    /// A user (locked for update where the backend locks).
    async fn user_record(&mut self, id: i64) -> Result<Option<UserRecord>>;
    /// Sets (`Some`) or clears (`None`) when the user was disabled.
    async fn set_disabled_at(&mut self, id: i64, at: Option<&str>) -> Result<()>;
    /// Revokes the user's tokens not yet revoked, at `at`; how many.
    async fn revoke_tokens(&mut self, user_id: i64, at: &str) -> Result<i64>;
}

/// Disables, enables or revokes the tokens of user `id`, audited. Unknown user: `NOT_FOUND`;
/// disabling a disabled user: `USER_ALREADY_DISABLED`; enabling an enabled one:
/// `USER_NOT_DISABLED`.
pub(crate) async fn change_user<T: UsersTx>(
    tx: &mut T,
    ctx: &Ctx,
    id: i64,
    change: UserChange,
) -> Result<UserRecord> {
    let before = tx.user_record(id).await?.ok_or(StoreError::NotFound)?;
    let at = timestamp(&ctx.at);
    let action = match change {
        UserChange::Disable if before.disabled => {
            return Err(StoreError::conflict(
                "USER_ALREADY_DISABLED",
                format!("user {id} is already disabled; enable it first to change that"),
            ));
        }
        UserChange::Enable if !before.disabled => {
            return Err(StoreError::conflict("USER_NOT_DISABLED", format!("user {id} is not disabled")));
        }
        UserChange::Disable => {
            tx.set_disabled_at(id, Some(&at)).await?;
            "user.disabled"
        }
        UserChange::Enable => {
            tx.set_disabled_at(id, None).await?;
            "user.enabled"
        }
        UserChange::RevokeTokens => {
            tx.revoke_tokens(id, &at).await?;
            "user.tokens_revoked"
        }
    };
    let after = tx.user_record(id).await?.ok_or(StoreError::NotFound)?;
    audit::append(tx, ctx, &[user_event(action, &before, &after)]).await?;
    Ok(after)
}

/// Issues user `id` a new token (its SHA-256 `hash`), revoking every other, audited as
/// `user.token_issued`. Unknown user: `NOT_FOUND`.
pub(crate) async fn replace_token<T: UsersTx>(
    tx: &mut T,
    ctx: &Ctx,
    id: i64,
    hash: &[u8; 32],
) -> Result<UserRecord> {
    let before = tx.user_record(id).await?.ok_or(StoreError::NotFound)?;
    let at = timestamp(&ctx.at);
    tx.revoke_tokens(id, &at).await?;
    tx.insert_token(hash, id, &at).await?;
    let after = tx.user_record(id).await?.ok_or(StoreError::NotFound)?;
    audit::append(tx, ctx, &[user_event("user.token_issued", &before, &after)]).await?;
    Ok(after)
}

/// The audit event of a change to a user: whether disabled and how many tokens, before and
/// after (never a token or its hash).
fn user_event(action: &'static str, before: &UserRecord, after: &UserRecord) -> PendingEvent {
    let state = |u: &UserRecord| {
        serde_json::json!({ "name": u.name, "disabled": u.disabled, "active_tokens": u.active_tokens })
            .to_string()
    };
    PendingEvent::new(action, format!("user/{}", before.id), state(before), state(after))
}

/// Creates a company. Duplicate name: `COMPANY_EXISTS`.
pub(crate) async fn create_company<T: UsersTx>(
    tx: &mut T,
    ctx: &Ctx,
    name: &str,
    country: &str,
) -> Result<Company> {
    let Some(id) = tx.insert_company(name, country, &timestamp(&ctx.at)).await? else {
        return Err(StoreError::conflict("COMPANY_EXISTS", format!("company {name:?} exists")));
    };
    let after = serde_json::json!({ "name": name, "country": country }).to_string();
    let event = PendingEvent::new("company.created", format!("company/{id}"), "null".into(), after);
    audit::append(tx, ctx, &[event]).await?;
    Ok(Company { id, name: name.to_owned(), country: country.to_owned() })
}

/// Creates a user and its token. Duplicate name: `USER_EXISTS`.
pub(crate) async fn create_user<T: UsersTx>(tx: &mut T, ctx: &Ctx, u: NewUser) -> Result<User> {
    let at = timestamp(&ctx.at);
    let Some(id) = tx.insert_user(&u, &at).await? else {
        return Err(StoreError::conflict("USER_EXISTS", format!("user {:?} exists", u.name)));
    };
    tx.insert_token(&u.token_hash, id, &at).await?;
    let after = serde_json::json!({ "name": u.name, "role": u.role.as_str(), "company_id": u.company_id })
        .to_string();
    let event = PendingEvent::new("user.created", format!("user/{id}"), "null".into(), after);
    audit::append(tx, ctx, &[event]).await?;
    Ok(User { id, name: u.name, role: u.role, company_id: u.company_id })
}
