//! People in the console: signing in with a name and a password (argon2id), sessions with
//! idle and absolute expiry, signing out, passwords set by an administrator or through a
//! one-time invitation, and a pause after repeated wrong passwords. Machines keep API tokens
//! ([`super::users`]).
//!
//! Only hashes are stored: the password's argon2id PHC string, the SHA-256 of a session id and
//! of an invitation token. The session id and the invitation token exist only in the person's
//! cookie and link.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use chrono::{DateTime, Duration, Utc};
use originlink_store::{Ctx, NewSession, Session, Store, User, UserRecord, token_hash};

use super::{AppState, Error, Kind, Result};

/// Shortest password accepted.
pub const MIN_PASSWORD: usize = 10;
/// Longest password accepted (bounds the hashing work).
pub const MAX_PASSWORD: usize = 256;
/// A session unused for this long has ended.
pub const IDLE: Duration = Duration::minutes(30);
/// A session ends this long after sign-in, used or not.
pub const ABSOLUTE: Duration = Duration::hours(12);
/// How long an invitation link is good for.
pub const INVITATION_VALID: Duration = Duration::days(7);
pub use crate::throttle::{FREE_TRIES, Throttle};

/// A session just started: the id for the person's cookie, the CSRF token of its forms, and
/// who signed in.
#[derive(Debug, Clone)]
pub struct Started {
    /// The session id (the cookie's value). Never stored, never logged.
    pub id: String,
    /// The session's CSRF token.
    pub csrf: String,
    /// Who signed in.
    pub user: User,
}

/// Signs `name` in with `password`. A wrong name, a wrong password, a disabled user and a user
/// without a password all answer the same `SIGN_IN_FAILED`; after [`FREE_TRIES`] wrong
/// passwords for a name, every try waits (`SIGN_IN_THROTTLED`, saying how long), the right
/// password included, the wait doubling with each further failure up to 15 minutes.
pub async fn sign_in(state: &AppState, name: &str, password: &str) -> Result<Started> {
    let now = state.clock.now();
    let key = name.trim().to_lowercase();
    if let Some(wait) = state.sign_ins.waiting(&key, now) {
        return Err(sign_in_throttled(wait));
    }
    let login = state.store.login(name.trim()).await?;
    let stored = login.as_ref().and_then(|l| l.password_hash.clone());
    let password = password.to_owned();
    // A name without a password is checked against a dummy hash, so that the time taken does
    // not tell which names exist.
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, stored.as_deref()))
        .await
        .map_err(Error::internal)?;
    let user = match login {
        Some(l) if ok && !l.disabled => l.user,
        _ => {
            state.sign_ins.failed(&key, now);
            state.metrics.sign_ins_failed.inc();
            tracing::info!(name = %key, "sign-in failed");
            return Err(sign_in_failed());
        }
    };
    state.sign_ins.succeeded(&key);
    let id = random_hex()?;
    let csrf = random_hex()?;
    let ctx = state.ctx(&user);
    state
        .store
        .start_session(&ctx, NewSession { id_hash: token_hash(&id), user_id: user.id, csrf: csrf.clone() })
        .await?;
    tracing::info!(user = user.id, "signed in");
    Ok(Started { id, csrf, user })
}

/// The refusal of a wrong name or a wrong password: the same for both.
pub fn sign_in_failed() -> Error {
    Error::new(
        Kind::Unauthenticated,
        "SIGN_IN_FAILED",
        "The name or the password is not right. Check them and try again.",
    )
    .field("password")
}

/// The refusal of a try while its name waits after too many wrong passwords.
pub fn sign_in_throttled(wait: Duration) -> Error {
    Error::new(
        Kind::Throttled,
        "SIGN_IN_THROTTLED",
        format!("Too many wrong passwords. Wait {} seconds, then try again.", wait.num_seconds().max(1)),
    )
}

/// The session whose id is `id`, when in force: not ended, its user not disabled, used within
/// [`IDLE`] and started within [`ABSOLUTE`]. An expired session is ended (audited). A use more
/// than a minute after the last one is recorded.
pub async fn session(state: &AppState, id: &str) -> Result<Option<Session>> {
    if id.is_empty() || id.len() > 128 {
        return Ok(None);
    }
    let hash = token_hash(id);
    let Some(s) = state.store.session(&hash).await? else { return Ok(None) };
    let now = state.clock.now();
    let seen = instant(&s.last_seen_at);
    if ended(instant(&s.created_at), seen, now) {
        let ctx = Ctx::new(format!("system: session of user {} expired", s.user.id), now);
        state.store.end_session(&ctx, &hash).await?;
        return Ok(None);
    }
    if now - seen > Duration::minutes(1) {
        state.store.touch_session(&hash, now).await?;
    }
    Ok(Some(s))
}

/// Whether a session started at `created` and last used at `seen` has ended at `now`: unused
/// for longer than [`IDLE`], or started longer than [`ABSOLUTE`] ago.
pub fn ended(created: DateTime<Utc>, seen: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now - created > ABSOLUTE || now - seen > IDLE
}

/// Ends the session `id` (signing out), audited; nothing when it is not in force.
pub async fn sign_out(state: &AppState, user: &User, id: &str) -> Result<()> {
    state.store.end_session(&state.ctx(user), &token_hash(id)).await?;
    tracing::info!(user = user.id, "signed out");
    Ok(())
}

/// Sets user `id`'s password (an administrator's reset, or `node user add --password-stdin`),
/// ending the user's sessions. Checked by [`check_password`].
pub async fn set_password(store: &dyn Store, ctx: &Ctx, id: i64, password: &str) -> Result<UserRecord> {
    let hash = hash_password(password).await?;
    Ok(store.set_password(ctx, id, &hash).await?)
}

/// Makes a one-time invitation for user `id` to set a password, good for
/// [`INVITATION_VALID`]: the token for the link (never stored).
pub async fn invite(state: &AppState, actor: &User, id: i64) -> Result<String> {
    let token = random_hex()?;
    let until = state.clock.now() + INVITATION_VALID;
    state.store.invite(&state.ctx(actor), id, &token_hash(&token), until).await?;
    Ok(token)
}

/// Sets the password of the invitation `token`'s user, once.
pub async fn accept_invitation(state: &AppState, token: &str, password: &str) -> Result<UserRecord> {
    let hash = hash_password(password).await?;
    let ctx = Ctx::new("invitation".to_owned(), state.clock.now());
    state.store.accept_invitation(&ctx, &token_hash(token), &hash).await.map_err(|e| match Error::from(e) {
        e if e.code == "INVITATION_INVALID" => e.field("token"),
        e => e,
    })
}

/// A password as a person chose it: [`MIN_PASSWORD`] to [`MAX_PASSWORD`] characters.
pub fn check_password(password: &str) -> Result<()> {
    let n = password.chars().count();
    if n < MIN_PASSWORD {
        return Err(Error::invalid(
            "PASSWORD_TOO_SHORT",
            "password",
            format!(
                "Choose a password of at least {MIN_PASSWORD} characters; a few words you will remember work well."
            ),
        ));
    }
    if n > MAX_PASSWORD {
        return Err(Error::invalid(
            "PASSWORD_TOO_LONG",
            "password",
            format!("Choose a password of at most {MAX_PASSWORD} characters."),
        ));
    }
    Ok(())
}

/// The argon2id hash (PHC string) of a password that [`check_password`] accepts.
pub async fn hash_password(password: &str) -> Result<String> {
    check_password(password)?;
    let mut salt = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut salt).map_err(Error::internal)?;
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::encode_b64(&salt).map_err(Error::internal)?;
        argon2::Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(Error::internal)
    })
    .await
    .map_err(Error::internal)?
}

/// Whether `password` matches `stored`; with no stored hash, a dummy one is checked (same
/// work) and the answer is no. CPU-bound: call it off the async threads.
pub fn verify_password(password: &str, stored: Option<&str>) -> bool {
    static DUMMY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let salt = SaltString::encode_b64(b"originlink-dummy").expect("a valid salt");
        argon2::Argon2::default().hash_password(b"not a password", &salt).expect("hashes").to_string()
    });
    let (hash, real) = match stored {
        Some(h) => (h, true),
        None => (DUMMY.as_str(), false),
    };
    let Ok(parsed) = PasswordHash::new(hash) else { return false };
    argon2::Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok() && real
}

/// 32 random bytes in hex: a session id, a CSRF token, an invitation token.
pub fn random_hex() -> Result<String> {
    let mut b = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).map_err(Error::internal)?;
    Ok(originlink_store::hex(&b))
}

fn instant(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).map(|t| t.with_timezone(&Utc)).unwrap_or(DateTime::<Utc>::MIN_UTC)
}
