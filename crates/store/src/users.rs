//! Companies and users, written once for both backends (a backend implements [`UsersTx`]).

use crate::audit::{self, AuditTx, PendingEvent};
use crate::model::{Company, Ctx, NewUser, User};
use crate::{Result, StoreError, timestamp};

/// What creating companies and users needs from a backend's open transaction.
pub(crate) trait UsersTx: AuditTx {
    /// Inserts a company; `None` when the name is taken.
    async fn insert_company(&mut self, name: &str, country: &str, at: &str) -> Result<Option<i64>>;
    /// Inserts a user; `None` when the name is taken.
    async fn insert_user(&mut self, u: &NewUser, at: &str) -> Result<Option<i64>>;
    /// Inserts the token (its hash) of a user.
    async fn insert_token(&mut self, hash: &[u8; 32], user_id: i64, at: &str) -> Result<()>;
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
