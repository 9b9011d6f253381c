//! The notifier: tells people what happened, in the console, by e-mail and by signed webhook.
//!
//! Notifications are made from the audit log, which every state change appends to in its own
//! transaction: the notifier reads the events after its cursor, turns those that concern
//! someone into notifications (one per audience: `role:<role>`, e.g. `role:customs-officer`, or
//! `company:<id>`), and stores them with the cursor moved in ONE transaction, so a crash
//! repeats nothing and loses nothing. Two things have no event of their own and are looked
//! for at each step: verification requests past their deadline, and dead letters; each is
//! notified once (the notification's key).
//!
//! | event | who | |
//! |---|---|---|
//! | `application.submitted` | officers | a new application to review |
//! | `application.approved`, `.returned`, `.rejected` | the exporter's company | |
//! | `certificate.status`, `certificate.revoked` | the exporter's company | every status change |
//! | `received.stored`, `received.rejected` | customs | a certificate arrived |
//! | `declaration.line_decided` of a waiting line | customs | decided once its certificate came |
//! | an overdue verification request | customs | |
//! | a dead letter | administrators | |
//! | a member that has taken nothing for `unreachable_minutes` | administrators | |
//!
//! Each notification's e-mails (to the enabled users of its audience with an address, through
//! the configured SMTP relay) and webhook calls (`[[notifications.webhooks]]` of its audience,
//! signed with HMAC-SHA256) are deliveries, retried with backoff until delivered or given up.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use originlink_store::{AuditEvent, Delivery, DeliveryOutcome, NewDelivery, NewNotification, Role};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::app::notifications::text;
use crate::app::{AppState, Result};
pub use crate::config::{NotificationsConfig, WebhookConfig};

/// How many audit events one step reads.
const BATCH: i64 = 500;
/// Attempts of a delivery before it is given up.
pub const MAX_ATTEMPTS: i32 = 8;
/// How long one SMTP or webhook exchange may take.
const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
struct Webhook {
    url: String,
    audience: String,
    secret: ring::hmac::Key,
}

/// The notifier of a node.
#[derive(Clone)]
pub struct Notifier {
    state: AppState,
    smtp: Option<(String, String)>,
    webhooks: Arc<Vec<Webhook>>,
    console: Option<String>,
    interval: Duration,
    unreachable: chrono::Duration,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Notifier(smtp: {:?}, {} webhooks)", self.smtp, self.webhooks.len())
    }
}

/// `kind/<id>[/...]`: the id.
fn entity_id(e: &AuditEvent) -> Option<i64> {
    e.entity.split('/').nth(1)?.parse().ok()
}

/// The audience of everyone with `r`.
fn role(r: Role) -> String {
    crate::app::notifications::role_audience(r)
}

fn json_of(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or(Value::Null)
}

impl Notifier {
    /// A notifier for `state` as `config` says; `console` is the console's address for the
    /// links in e-mails. A webhook secret that cannot be read: `Err` with the file.
    pub fn new(
        state: AppState,
        config: &NotificationsConfig,
        console: Option<String>,
    ) -> std::io::Result<Notifier> {
        let mut webhooks = Vec::new();
        for w in &config.webhooks {
            let secret = std::fs::read(&w.secret_file)
                .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", w.secret_file.display())))?;
            let secret = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.trim_ascii());
            webhooks.push(Webhook { url: w.url.clone(), audience: w.audience.clone(), secret });
        }
        let smtp = config
            .smtp
            .clone()
            .map(|s| (s, config.from.clone().unwrap_or_else(|| "originlink@localhost".into())));
        let interval = Duration::from_millis(config.interval_ms.unwrap_or(1000).max(10));
        let unreachable = chrono::Duration::minutes(i64::from(config.unreachable_minutes.unwrap_or(15)));
        Ok(Notifier { state, smtp, webhooks: Arc::new(webhooks), console, interval, unreachable })
    }

    /// Runs [`Notifier::step`] every interval until `stop` fires.
    pub fn spawn(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        tokio::spawn(async move {
            loop {
                if let Err(e) = self.step().await {
                    tracing::warn!(error = %e, "notifier step failed; trying again");
                }
                tokio::select! {
                    _ = tokio::time::sleep(self.interval) => {}
                    _ = stop.changed() => return,
                }
            }
        });
    }

    /// Makes the notifications of what happened since the last step, then makes the
    /// deliveries that are due. Returns (notifications made, deliveries attempted).
    pub async fn step(&self) -> Result<(usize, usize)> {
        let made = self.project().await?;
        let sent = self.deliver().await?;
        Ok((made, sent))
    }

    async fn project(&self) -> Result<usize> {
        let store = &self.state.store;
        let mut made = 0;
        loop {
            let cursor = store.notifier_cursor().await?;
            let (head, _) = store.audit_head().await?;
            let events = store.audit_events(cursor, head, BATCH).await?;
            let Some(last) = events.last().map(|e| e.seq) else { break };
            let mut list = Vec::new();
            for e in &events {
                for (audience, kind, link, args) in self.of_event(e).await? {
                    list.push(
                        self.notification(
                            format!("audit:{}:{audience}", e.seq),
                            audience,
                            kind,
                            link,
                            args,
                            e,
                        )
                        .await?,
                    );
                }
            }
            made += store.add_notifications(Some(last), list).await?;
            if (events.len() as i64) < BATCH {
                break;
            }
        }
        let now = self.state.clock.now();
        let mut list = Vec::new();
        for v in store.overdue_verifications(now).await? {
            let args = json!({"number": v.number, "partner": v.partner, "deadline": v.deadline});
            let key = format!("overdue:verification/{}", v.id);
            list.push(
                self.made(
                    key,
                    role(Role::CustomsOfficer),
                    "verification-overdue",
                    "/verifications".into(),
                    args,
                    now,
                )
                .await?,
            );
        }
        for m in store.dead_letters(100).await? {
            let args = json!({"kind": m.kind, "recipient": m.recipient, "error": m.last_error});
            let key = format!("dead:message/{}", m.id);
            list.push(
                self.made(key, role(Role::Admin), "dead-letter", "/admin/exchange".into(), args, now).await?,
            );
        }
        list.extend(self.unreachable(now).await?);
        made += store.add_notifications(None, list).await?;
        Ok(made)
    }

    /// A member that has not taken the oldest message waiting for it for longer than the
    /// configured minutes, once per such message.
    async fn unreachable(&self, now: DateTime<Utc>) -> Result<Vec<NewNotification>> {
        let mut oldest: std::collections::BTreeMap<String, originlink_store::OutboxRow> = Default::default();
        for m in self.state.store.outbox_messages(1000).await? {
            if !m.dead && m.attempts > 0 {
                oldest.entry(m.recipient.clone()).or_insert(m);
            }
        }
        let mut list = Vec::new();
        for (member, m) in oldest {
            let Ok(since) = DateTime::parse_from_rfc3339(&m.created_at) else { continue };
            let minutes = (now - since.with_timezone(&Utc)).num_minutes();
            if minutes < self.unreachable.num_minutes() {
                continue;
            }
            let args =
                json!({"member": member, "minutes": minutes, "attempts": m.attempts, "error": m.last_error});
            let key = format!("unreachable:{member}:{}", m.id);
            list.push(
                self.made(key, role(Role::Admin), "member-unreachable", "/admin/exchange".into(), args, now)
                    .await?,
            );
        }
        Ok(list)
    }

    async fn notification(
        &self,
        key: String,
        audience: String,
        kind: &'static str,
        link: String,
        args: Value,
        e: &AuditEvent,
    ) -> Result<NewNotification> {
        let at = DateTime::parse_from_rfc3339(&e.at)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|_| self.state.clock.now());
        self.made(key, audience, kind, link, args, at).await
    }

    async fn made(
        &self,
        key: String,
        audience: String,
        kind: &'static str,
        link: String,
        mut args: Value,
        at: DateTime<Utc>,
    ) -> Result<NewNotification> {
        let mut deliveries = Vec::new();
        if self.smtp.is_some() {
            let (role, company) = match audience.split_once(':') {
                Some(("role", r)) => (Role::parse(r), None),
                Some(("company", c)) => (None, c.parse().ok()),
                _ => (None, None),
            };
            if role.is_some() || company.is_some() {
                for address in self.state.store.emails_of(role, company).await? {
                    deliveries.push(NewDelivery { channel: "email".into(), target: address });
                }
            }
        }
        for w in self.webhooks.iter().filter(|w| w.audience == audience) {
            deliveries.push(NewDelivery { channel: "webhook".into(), target: w.url.clone() });
        }
        args["text"] = Value::String(text(kind, &args));
        Ok(NewNotification { key, audience, kind: kind.into(), link, args: args.to_string(), at, deliveries })
    }

    /// The (audience, kind, link, args) of an audit event that concerns someone.
    async fn of_event(&self, e: &AuditEvent) -> Result<Vec<(String, &'static str, String, Value)>> {
        let store = &self.state.store;
        let (after, before) = (json_of(&e.after), json_of(&e.before));
        let Some(id) = entity_id(e) else { return Ok(vec![]) };
        let company_of_app = |id: i64| async move {
            Ok::<_, crate::app::Error>(store.application(id).await?.map(|a| (a.company_id, a.company_name)))
        };
        Ok(match e.action.as_str() {
            "application.submitted" => {
                let company = company_of_app(id).await?.map(|c| c.1).unwrap_or_default();
                vec![(
                    role(Role::IssuingOfficer),
                    "application-submitted",
                    format!("/applications/{id}"),
                    json!({"id": id, "company": company}),
                )]
            }
            "application.approved" | "application.returned" | "application.rejected" => {
                let Some((company, _)) = company_of_app(id).await? else { return Ok(vec![]) };
                let mut args =
                    json!({"id": id, "reason": after.get("reason").cloned().unwrap_or(Value::Null)});
                let kind = match e.action.as_str() {
                    "application.approved" => {
                        let cert = match after.get("certificate_id").and_then(Value::as_i64) {
                            Some(c) => store.certificate(c).await?,
                            None => None,
                        };
                        args["number"] = json!(cert.map(|c| c.number));
                        "application-approved"
                    }
                    "application.returned" => "application-returned",
                    _ => "application-rejected",
                };
                vec![(format!("company:{company}"), kind, format!("/applications/{id}"), args)]
            }
            "certificate.status" | "certificate.revoked" if e.entity.starts_with("certificate/") => {
                let Some(cert) = store.certificate(id).await? else { return Ok(vec![]) };
                let (kind, args) = if e.action == "certificate.status" {
                    (
                        "certificate-status",
                        json!({"number": cert.number, "status": after.get("status"), "from_country": after.get("from_country")}),
                    )
                } else {
                    ("certificate-revoked", json!({"number": cert.number, "reason": after.get("reason")}))
                };
                vec![(format!("company:{}", cert.company_id), kind, format!("/certificates/{id}"), args)]
            }
            "received.stored" | "received.rejected" => {
                let kind = if e.action == "received.stored" { "received" } else { "received-invalid" };
                let args =
                    json!({"number": after.get("number"), "issuing_country": after.get("issuing_country")});
                vec![(role(Role::CustomsOfficer), kind, format!("/received/{id}"), args)]
            }
            // Decided by itself once the certificate it waited for arrived (at lodging, the
            // officer sees the decision on the page).
            "declaration.line_decided"
                if before.get("outcome").and_then(Value::as_str) == Some("pending")
                    && e.actor == "customs:auto" =>
            {
                let number = store.declaration(id).await?.map(|d| d.number).unwrap_or_default();
                let line_no = e.entity.rsplit('/').next().unwrap_or_default();
                let args =
                    json!({"declaration": number, "line_no": line_no, "outcome": after.get("outcome")});
                vec![(role(Role::CustomsOfficer), "line-decided", format!("/declarations/{id}"), args)]
            }
            _ => vec![],
        })
    }

    async fn deliver(&self) -> Result<usize> {
        let now = self.state.clock.now();
        let due = self.state.store.due_deliveries(now, 50).await?;
        for d in &due {
            let sent = match d.channel.as_str() {
                "email" => self.email(d).await,
                "webhook" => self.webhook(d).await,
                other => Err(format!("unknown channel {other}")),
            };
            let outcome = match sent {
                Ok(()) => DeliveryOutcome::Delivered,
                Err(error) => {
                    tracing::warn!(channel = %d.channel, delivery = d.id, error = %error, "notification not delivered");
                    let retry_at = (d.attempts + 1 < MAX_ATTEMPTS).then(|| {
                        now + chrono::Duration::seconds((5i64 << d.attempts.clamp(0, 10)).min(3600))
                    });
                    DeliveryOutcome::Failed { error, retry_at }
                }
            };
            self.state.store.settle_delivery(d.id, self.state.clock.now(), outcome).await?;
        }
        Ok(due.len())
    }

    fn body(&self, d: &Delivery) -> (String, Value) {
        let args = json_of(&d.notification.args);
        let text = args.get("text").and_then(Value::as_str).unwrap_or_default().to_owned();
        (text, args)
    }

    async fn email(&self, d: &Delivery) -> std::result::Result<(), String> {
        let Some((relay, from)) = &self.smtp else { return Err("no SMTP relay configured".into()) };
        let (text, _) = self.body(d);
        let country = &self.state.issuer.authority.country;
        let link = match &self.console {
            Some(base) => format!(
                "\r\n\r\nOpen it in the console: {}{}",
                base.trim_end_matches('/'),
                d.notification.link
            ),
            None => String::new(),
        };
        let subject = format!("OriginLink {country}: {}", text.chars().take(120).collect::<String>());
        let mail = Mail { from, to: &d.target, subject: &subject, body: &format!("{text}{link}\r\n") };
        tokio::time::timeout(TIMEOUT, send_mail(relay, &mail))
            .await
            .map_err(|_| "the SMTP relay timed out".to_owned())?
    }

    async fn webhook(&self, d: &Delivery) -> std::result::Result<(), String> {
        let Some(w) = self.webhooks.iter().find(|w| w.url == d.target) else {
            return Err("the webhook is no longer configured".into());
        };
        let (text, args) = self.body(d);
        let n = &d.notification;
        let body = json!({
            "id": n.id, "kind": n.kind, "audience": n.audience, "text": text, "link": n.link,
            "args": args, "at": n.at, "country": self.state.issuer.authority.country,
        })
        .to_string();
        let t = self.state.clock.now().timestamp();
        let signature = signature(&w.secret, t, body.as_bytes());
        tokio::time::timeout(TIMEOUT, post(&w.url, &format!("t={t},v1={signature}"), body))
            .await
            .map_err(|_| "the webhook timed out".to_owned())?
    }
}

/// The webhook signature: lower-case hex HMAC-SHA256 of `"{t}.{body}"` (as the
/// `X-OriginLink-Signature: t=<unix seconds>,v1=<hex>` header carries it).
pub fn signature(key: &ring::hmac::Key, t: i64, body: &[u8]) -> String {
    let mut ctx = ring::hmac::Context::with_key(key);
    ctx.update(format!("{t}.").as_bytes());
    ctx.update(body);
    hex_of(ctx.sign().as_ref())
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// One e-mail.
struct Mail<'a> {
    from: &'a str,
    to: &'a str,
    subject: &'a str,
    body: &'a str,
}

/// Sends one e-mail through a plain SMTP relay (RFC 5321: EHLO, MAIL, RCPT, DATA, QUIT).
async fn send_mail(relay: &str, m: &Mail<'_>) -> std::result::Result<(), String> {
    let stream =
        tokio::net::TcpStream::connect(relay).await.map_err(|e| format!("SMTP relay {relay}: {e}"))?;
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    async fn reply(
        r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
        want: char,
    ) -> std::result::Result<(), String> {
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).await.map_err(|e| e.to_string())? == 0 {
                return Err("the SMTP relay closed the connection".into());
            }
            if line.len() > 1000 {
                return Err("the SMTP relay's reply is too long".into());
            }
            if line.as_bytes().get(3) != Some(&b'-') {
                return if line.starts_with(want) {
                    Ok(())
                } else {
                    Err(format!("SMTP: {}", line.trim_end()))
                };
            }
        }
    }
    let say = async |w: &mut tokio::net::tcp::OwnedWriteHalf, line: String| {
        w.write_all(line.as_bytes()).await.map_err(|e| e.to_string())
    };
    reply(&mut r, '2').await?;
    say(&mut w, "EHLO originlink\r\n".into()).await?;
    reply(&mut r, '2').await?;
    say(&mut w, format!("MAIL FROM:<{}>\r\n", m.from)).await?;
    reply(&mut r, '2').await?;
    say(&mut w, format!("RCPT TO:<{}>\r\n", m.to)).await?;
    reply(&mut r, '2').await?;
    say(&mut w, "DATA\r\n".into()).await?;
    reply(&mut r, '3').await?;
    let date = Utc::now().to_rfc2822();
    let mut data = format!(
        "From: <{}>\r\nTo: <{}>\r\nSubject: {}\r\nDate: {date}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
        m.from,
        m.to,
        m.subject.replace(['\r', '\n'], " ")
    );
    for line in m.body.replace("\r\n", "\n").split('\n') {
        // Dot-stuffing (RFC 5321 4.5.2).
        if line.starts_with('.') {
            data.push('.');
        }
        data.push_str(line);
        data.push_str("\r\n");
    }
    data.push_str(".\r\n");
    say(&mut w, data).await?;
    reply(&mut r, '2').await?;
    say(&mut w, "QUIT\r\n".into()).await?;
    Ok(())
}

/// POSTs a webhook call: `http://host:port/path` or `https://` (checked against the
/// system's CA certificates); any 2xx is delivered.
async fn post(url: &str, signature: &str, body: String) -> std::result::Result<(), String> {
    use http_body_util::{BodyExt, Full};
    let uri: hyper::Uri = url.parse().map_err(|e| format!("webhook URL: {e}"))?;
    let host = uri.host().ok_or("webhook URL without a host")?.to_owned();
    let https = uri.scheme_str() == Some("https");
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| format!("{host}:{port}: {e}"))?;
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/").to_owned();
    let req = hyper::Request::post(path)
        .header(hyper::header::HOST, &host)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header("x-originlink-signature", signature)
        .body(Full::new(bytes::Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    async fn send<IO>(io: IO, req: hyper::Request<Full<bytes::Bytes>>) -> std::result::Result<u16, String>
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let res = sender.send_request(req).await.map_err(|e| e.to_string())?;
        let status = res.status().as_u16();
        // The answer's body is not needed; at most 64 KiB of it is read.
        let _ = http_body_util::Limited::new(res.into_body(), 64 * 1024).collect().await;
        Ok(status)
    }
    let status = if https {
        let name = rustls::pki_types::ServerName::try_from(host.clone()).map_err(|e| e.to_string())?;
        let tls = tokio_rustls::TlsConnector::from(system_roots()?)
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        send(tls, req).await?
    } else {
        send(tcp, req).await?
    };
    if (200..300).contains(&status) { Ok(()) } else { Err(format!("the webhook answered HTTP {status}")) }
}

/// A TLS client trusting the system's CA certificates (Debian's `ca-certificates`).
fn system_roots() -> std::result::Result<Arc<rustls::ClientConfig>, String> {
    const BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
    let pem = std::fs::read(BUNDLE).map_err(|e| format!("{BUNDLE}: {e}"))?;
    let mut roots = rustls::RootCertStore::empty();
    for p in pem::parse_many(&pem).map_err(|e| e.to_string())? {
        let _ = roots.add(rustls::pki_types::CertificateDer::from(p.into_contents()));
    }
    Ok(Arc::new(rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth()))
}
