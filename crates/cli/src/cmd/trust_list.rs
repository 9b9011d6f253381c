//! `originlink trust-list build|verify|show`: the network operator's signed list of members.
//!
//! `verify` exits 0 when the list is signed by the operator and current, 1 when it is refused
//! (unsigned, wrong key, changed, malformed), 3 when it is signed but outdated.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Duration, Timelike, Utc};
use originlink_model::CountryCode;
use originlink_trust::jws;
use originlink_trust::keystore::{self, AuthorityDir};
use originlink_trust::trustlist::{self, FORMAT, Gateway, Member, Node, Revoked, TrustList};

/// Build, verify and show the signed trust list.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: TlCommand,
}

#[derive(Debug, clap::Subcommand)]
enum TlCommand {
    /// Build and sign a trust list from `keys init` directories.
    Build(BuildArgs),
    /// Check a trust list's signature against the operator certificate, and its dates.
    Verify(VerifyArgs),
    /// Print a trust list for people.
    Show(ShowArgs),
}

#[derive(Debug, clap::Args)]
struct BuildArgs {
    /// A member's `keys init` directory, or a copy of just its certificates (no key is read):
    /// ca.crt, every signing*.crt (current and rotated-out, for overlap) and tls.crt. Country
    /// and authority come from the CA certificate. Repeat.
    #[arg(long = "member", required = true)]
    members: Vec<PathBuf>,
    /// Operator private key (from `keys operator`).
    #[arg(long)]
    operator_key: PathBuf,
    /// Operator certificate.
    #[arg(long)]
    operator_cert: PathBuf,
    /// Sequence number; default the issue time in Unix seconds (so it only grows).
    #[arg(long)]
    sequence: Option<u64>,
    /// Issue time (RFC 3339); default now.
    #[arg(long)]
    issued_at: Option<DateTime<Utc>>,
    /// Days until the next list is due.
    #[arg(long, default_value_t = 30)]
    valid_days: i64,
    /// A node endpoint: COUNTRY=URL (the node's TLS certificate is the member's tls.crt). Repeat,
    /// also once per replica of a node: senders fail over between a member's endpoints.
    #[arg(long = "endpoint")]
    endpoints: Vec<String>,
    /// A regional gateway: ID=URL=TLS_CERT_FILE (from `keys gateway`). Repeat, also once per
    /// replica of the gateway with the same ID: nodes fail over between its endpoints.
    #[arg(long = "gateway")]
    gateways: Vec<String>,
    /// Agreements every member issues under.
    #[arg(long, value_delimiter = ',', default_value = "ATIGA,RCEP")]
    agreements: Vec<String>,
    /// A revoked certificate: COUNTRY:SERIAL or COUNTRY:SERIAL@RFC3339 (revoked from then on). Repeat.
    #[arg(long = "revoke")]
    revoked: Vec<String>,
    /// Output file; default standard output.
    #[arg(long, short)]
    out: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct VerifyArgs {
    /// The signed trust list.
    file: PathBuf,
    /// The operator certificate the list must be signed with.
    #[arg(long)]
    operator: PathBuf,
    /// Check time (RFC 3339); default now.
    #[arg(long)]
    at: Option<DateTime<Utc>>,
}

#[derive(Debug, clap::Args)]
struct ShowArgs {
    /// The trust list.
    file: PathBuf,
    /// Check the signature with this operator certificate first.
    #[arg(long)]
    operator: Option<PathBuf>,
}

pub fn run(a: Args) -> Result<ExitCode> {
    match a.command {
        TlCommand::Build(a) => build(a),
        TlCommand::Verify(a) => verify(a),
        TlCommand::Show(a) => show(a),
    }
}

fn build(a: BuildArgs) -> Result<ExitCode> {
    // Whole seconds: the list is for people to read too.
    let issued_at = a.issued_at.unwrap_or_else(Utc::now).with_nanosecond(0).unwrap_or_else(Utc::now);
    let mut members: Vec<Member> = Vec::new();
    for dir in &a.members {
        let d = AuthorityDir(dir.clone());
        let ca = keystore::load_certs(&d.ca_cert())?.remove(0);
        let country = ca
            .country()
            .and_then(|c| CountryCode::parse(c).ok())
            .with_context(|| format!("{}: the CA names no country (C=)", d.ca_cert().display()))?;
        let authority = ca.organization().unwrap_or_default().to_owned();
        let signing = d.all_signing_certs()?;
        let tls = keystore::load_certs(&d.tls_cert())?.remove(0);
        let nodes = a
            .endpoints
            .iter()
            .filter_map(|e| e.split_once('='))
            .filter(|(c, _)| *c == country.as_str())
            .map(|(_, url)| Node { url: url.to_owned(), tls_cert: trustlist::encode_cert(tls.der()) })
            .collect();
        match members.iter_mut().find(|m| m.country == country) {
            Some(m) => {
                // A second authority of the same country.
                if !m.authorities.contains(&authority) {
                    m.authorities.push(authority);
                }
                m.ca_certs.push(trustlist::encode_cert(ca.der()));
                m.signing_certs.extend(signing.iter().map(|c| trustlist::encode_cert(c.der())));
            }
            None => members.push(Member {
                country,
                authorities: vec![authority],
                ca_certs: vec![trustlist::encode_cert(ca.der())],
                signing_certs: signing.iter().map(|c| trustlist::encode_cert(c.der())).collect(),
                nodes,
                agreements: a.agreements.clone(),
                valid_from: None,
                valid_until: None,
                revoked: vec![],
            }),
        }
    }
    for r in &a.revoked {
        let (country, rest) =
            r.split_once(':').with_context(|| format!("--revoke {r:?}: expected COUNTRY:SERIAL"))?;
        let (serial, at) = match rest.split_once('@') {
            Some((s, t)) => {
                let t =
                    DateTime::parse_from_rfc3339(t).with_context(|| format!("--revoke {r:?}: bad time"))?;
                (s, Some(t.with_timezone(&Utc)))
            }
            None => (rest, None),
        };
        let m = members
            .iter_mut()
            .find(|m| m.country.as_str() == country)
            .with_context(|| format!("--revoke {r:?}: {country} is not a member"))?;
        let serial = serial.trim_start_matches('0').to_ascii_lowercase();
        if serial.is_empty() || !serial.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!("--revoke {r:?}: the serial must be hexadecimal");
        }
        m.revoked.push(Revoked { serial, revoked_at: at, reason: None });
    }
    let mut gateways = Vec::new();
    for g in &a.gateways {
        let mut parts = g.splitn(3, '=');
        let (Some(id), Some(url), Some(cert)) = (parts.next(), parts.next(), parts.next()) else {
            bail!("--gateway {g:?}: expected ID=URL=TLS_CERT_FILE");
        };
        let tls = keystore::load_certs(std::path::Path::new(cert))?.remove(0);
        gateways.push(Gateway {
            id: id.to_owned(),
            url: url.to_owned(),
            tls_cert: trustlist::encode_cert(tls.der()),
        });
    }
    let list = TrustList {
        format: FORMAT.into(),
        sequence: a.sequence.unwrap_or(issued_at.timestamp().max(0) as u64),
        issued_at,
        next_update: issued_at + Duration::days(a.valid_days),
        members,
        gateways,
    };
    let key = keystore::load_private_key(&a.operator_key)?;
    let cert = keystore::load_certs(&a.operator_cert)?.remove(0);
    let signed = list.sign(&key, cert.der())?;
    match &a.out {
        Some(p) => std::fs::write(p, &signed).with_context(|| format!("writing {}", p.display()))?,
        None => out!("{}", String::from_utf8_lossy(&signed)),
    }
    eprintln!(
        "trust list sequence {} with {} members, next update {}",
        list.sequence,
        list.members.len(),
        list.next_update
    );
    Ok(ExitCode::SUCCESS)
}

fn verify(a: VerifyArgs) -> Result<ExitCode> {
    let bytes = std::fs::read(&a.file).with_context(|| format!("reading {}", a.file.display()))?;
    let operators = keystore::load_certs(&a.operator)?;
    let list = match TrustList::from_signed(&bytes, &operators) {
        Ok(l) => l,
        Err(e) => {
            outln!("INVALID {} {e}", e.code());
            return Ok(ExitCode::from(1));
        }
    };
    let now = a.at.unwrap_or_else(Utc::now);
    if now > list.next_update {
        outln!(
            "CANNOT_VERIFY TRUST_LIST_EXPIRED sequence {} was due for replacement at {}",
            list.sequence,
            list.next_update
        );
        return Ok(ExitCode::from(3));
    }
    if now + Duration::minutes(5) < list.issued_at {
        outln!(
            "CANNOT_VERIFY TRUST_LIST_NOT_YET_VALID sequence {} is issued at {}",
            list.sequence,
            list.issued_at
        );
        return Ok(ExitCode::from(3));
    }
    originlink_trust::TrustStore::from_list(&list)?;
    outln!(
        "VALID trust list sequence {} with {} members, issued {}, next update {}",
        list.sequence,
        list.members.len(),
        list.issued_at,
        list.next_update
    );
    Ok(ExitCode::SUCCESS)
}

fn show(a: ShowArgs) -> Result<ExitCode> {
    let bytes = std::fs::read(&a.file).with_context(|| format!("reading {}", a.file.display()))?;
    let (list, checked) = match &a.operator {
        Some(op) => (TrustList::from_signed(&bytes, &keystore::load_certs(op)?)?, true),
        None => {
            let split = jws::split_signed_json(&bytes)?;
            (serde_json::from_value::<TrustList>(split.document).context("not a trust list")?, false)
        }
    };
    outln!("trust list {} sequence {}", list.format, list.sequence);
    outln!("issued {}  next update {}", list.issued_at, list.next_update);
    outln!(
        "signature: {}",
        if checked { "verified with the operator certificate" } else { "NOT checked (give --operator)" }
    );
    for m in &list.members {
        outln!();
        outln!("{} {} — {}", m.country, m.country.name(), m.authorities.join(", "));
        outln!("  agreements: {}", m.agreements.join(", "));
        for (label, certs) in [("CA", &m.ca_certs), ("signing", &m.signing_certs)] {
            for c in certs {
                let c = trustlist::decode_cert(c)?;
                outln!(
                    "  {label:8} {} serial {} valid {} .. {}",
                    c.subject(),
                    c.serial_hex(),
                    ts(c.not_before()),
                    ts(c.not_after())
                );
            }
        }
        for n in &m.nodes {
            let c = trustlist::decode_cert(&n.tls_cert)?;
            outln!("  node     {} TLS {} serial {}", n.url, c.subject(), c.serial_hex());
        }
        for r in &m.revoked {
            let at = r.revoked_at.map(|t| format!(" from {t}")).unwrap_or_default();
            outln!("  revoked  serial {}{at}", r.serial);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn ts(t: i64) -> String {
    DateTime::<Utc>::from_timestamp(t, 0).map(|d| d.date_naive().to_string()).unwrap_or_default()
}
