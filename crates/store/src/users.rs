//! Companies and users, written once for both backends (a backend implements [`UsersTx`]):
//! creating them, disabling and enabling users, issuing and revoking their tokens. Only a
//! token's SHA-256 is ever stored; a disabled user's tokens and revoked tokens do not
//! authenticate (the backends' `user_by_token_hash`).

use crate::audit::{self, AuditTx, PendingEvent};
use crate::model::{Company, Ctx, NewSession, NewUser, User, UserChange, UserRecord};
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
    /// Sets the user's password hash.
    async fn set_password_hash(&mut self, user_id: i64, hash: &str) -> Result<()>;
    /// Inserts a console session.
    async fn insert_session(&mut self, s: &NewSession, at: &str) -> Result<()>;
    /// Marks a session used at `at`, if it is in force.
    async fn touch_session(&mut self, id_hash: &[u8; 32], at: &str) -> Result<()>;
    /// Ends a session in force; its user's id, `None` when there was none.
    async fn end_session(&mut self, id_hash: &[u8; 32], at: &str) -> Result<Option<i64>>;
    /// Ends every session of the user in force; how many.
    async fn end_user_sessions(&mut self, user_id: i64, at: &str) -> Result<i64>;
    /// Inserts an invitation (its token's hash) to set the user's password: `[made at, expires at]`.
    async fn insert_invitation(&mut self, hash: &[u8; 32], user_id: i64, span: [&str; 2]) -> Result<()>;
    /// Uses an invitation not used and not expired at `at`: its user's id, `None` otherwise.
    async fn use_invitation(&mut self, hash: &[u8; 32], at: &str) -> Result<Option<i64>>;
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
            tx.end_user_sessions(id, &at).await?;
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

/// Starts a console session for its user, audited as `user.signed_in`.
pub(crate) async fn start_session<T: UsersTx>(tx: &mut T, ctx: &Ctx, s: &NewSession) -> Result<()> {
    let user = tx.user_record(s.user_id).await?.ok_or(StoreError::NotFound)?;
    tx.insert_session(s, &timestamp(&ctx.at)).await?;
    let after = serde_json::json!({ "name": user.name }).to_string();
    let event = PendingEvent::new("user.signed_in", format!("user/{}", user.id), "null".into(), after);
    audit::append(tx, ctx, &[event]).await
}

/// Ends a console session in force, audited as `user.signed_out`; nothing when there is none.
pub(crate) async fn end_session<T: UsersTx>(tx: &mut T, ctx: &Ctx, id_hash: &[u8; 32]) -> Result<()> {
    let Some(user_id) = tx.end_session(id_hash, &timestamp(&ctx.at)).await? else { return Ok(()) };
    let event = PendingEvent::new("user.signed_out", format!("user/{user_id}"), "null".into(), "null".into());
    audit::append(tx, ctx, &[event]).await
}

/// Sets user `id`'s password (its hash) and ends the user's sessions, audited as
/// `user.password_set` (never the hash). Unknown user: `NOT_FOUND`.
pub(crate) async fn set_password<T: UsersTx>(
    tx: &mut T,
    ctx: &Ctx,
    id: i64,
    hash: &str,
) -> Result<UserRecord> {
    let before = tx.user_record(id).await?.ok_or(StoreError::NotFound)?;
    let at = timestamp(&ctx.at);
    tx.set_password_hash(id, hash).await?;
    tx.end_user_sessions(id, &at).await?;
    let after = tx.user_record(id).await?.ok_or(StoreError::NotFound)?;
    audit::append(tx, ctx, &[user_event("user.password_set", &before, &after)]).await?;
    Ok(after)
}

/// Invites user `id` to set a password, with an invitation token (its hash) good until
/// `expires_at`, audited as `user.invited`. Unknown user: `NOT_FOUND`.
pub(crate) async fn invite<T: UsersTx>(
    tx: &mut T,
    ctx: &Ctx,
    id: i64,
    hash: &[u8; 32],
    expires_at: &str,
) -> Result<()> {
    let user = tx.user_record(id).await?.ok_or(StoreError::NotFound)?;
    tx.insert_invitation(hash, id, [&timestamp(&ctx.at), expires_at]).await?;
    let after = serde_json::json!({ "name": user.name, "expires_at": expires_at }).to_string();
    let event = PendingEvent::new("user.invited", format!("user/{id}"), "null".into(), after);
    audit::append(tx, ctx, &[event]).await
}

/// Uses an invitation to set its user's password. An unknown, used or expired invitation, or
/// one for a disabled user: `INVITATION_INVALID`.
pub(crate) async fn accept_invitation<T: UsersTx>(
    tx: &mut T,
    ctx: &Ctx,
    hash: &[u8; 32],
    password_hash: &str,
) -> Result<UserRecord> {
    let invalid = || {
        StoreError::conflict(
            "INVITATION_INVALID",
            "this invitation link is not valid: it was used, has expired or was never made; ask your administrator for a new one",
        )
    };
    let id = tx.use_invitation(hash, &timestamp(&ctx.at)).await?.ok_or_else(invalid)?;
    if tx.user_record(id).await?.is_none_or(|u| u.disabled) {
        return Err(invalid());
    }
    set_password(tx, ctx, id, password_hash).await
}
