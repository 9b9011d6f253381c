//! Importing customs on the node (issue 14): lines waiting for a certificate decided when it
//! arrives, the officer's re-decision and override, risk that ranks, revenue by declaration
//! date. The node is KH's; certificates come from TH and are inserted as the exchange would.

use chrono::{Duration, NaiveDate, Utc};
use originlink_model::{Agreement, Certificate, CertificateNumber, CountryCode};
use originlink_node::exchange::Arrival;
use originlink_store::{Ctx, NewReceived};
use serde_json::{Value, json};

use crate::api::{Node, node};

/// A TH certificate for KH, numbered `number`, issued `days_ago`, one item.
pub(crate) fn th_certificate(number: &str, seq: u32, days_ago: i64) -> Certificate {
    let (th, kh) = (CountryCode::parse("TH").expect("TH"), CountryCode::parse("KH").expect("KH"));
    let day = Utc::now().date_naive() - Duration::days(days_ago);
    let mut cert = originlink_model::sample::sample(Agreement::Atiga, th, kh, day, 1, seq);
    cert.number = Some(CertificateNumber::parse(number).expect("number"));
    cert
}

/// Stores `cert` as received and valid, as the exchange does on arrival.
pub(crate) async fn receive(n: &Node, cert: &Certificate) {
    let number = cert.number.as_ref().expect("numbered").as_str();
    let doc = originlink_formats::xml::write(cert).into_bytes();
    n.state
        .store
        .insert_received(&Ctx::new("exchange", Utc::now()), NewReceived::valid("TH", number, 1, doc))
        .await
        .expect("received");
}

/// A declaration of `qty` of the certificate's item 1, valued `value` USD, on `date`.
pub(crate) fn declaration_of(
    number: &str,
    cert: &Certificate,
    qty: &str,
    value: &str,
    date: NaiveDate,
) -> Value {
    let it = &cert.items[0];
    json!({
        "number": number,
        "importer": { "name": cert.consignee.name, "id": cert.consignee.id },
        "importing_country": "KH",
        "declaration_date": date.format("%Y-%m-%d").to_string(),
        "lines": [{
            "line_no": 1,
            "hs_code": it.hs.dotted(),
            "description": it.description,
            "quantity": qty,
            "unit": it.quantity.unit().as_str(),
            "customs_value": { "amount": value, "currency": "USD" },
            "origin_country": "TH",
            "claimed_agreement": "ATIGA",
            "eco": { "issuing_country": "TH", "number": cert.number.as_ref().expect("numbered").as_str() },
            "invoice_number": it.invoice.number,
        }]
    })
}

/// The pro-rata FOB of `qty` of item 1, as text.
pub(crate) fn fob_of(cert: &Certificate, qty: rust_decimal::Decimal) -> String {
    let it = &cert.items[0];
    let fob = it.fob.as_ref().expect("fob").amount();
    (fob * qty / it.quantity.value()).round_dp(2).to_string()
}

pub(crate) fn codes(line: &Value) -> Vec<String> {
    line["reasons"]
        .as_array()
        .map(|a| a.iter().filter_map(|r| r["code"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

pub(crate) async fn declare(n: &Node, body: Value) -> Value {
    let r = n.post_json("/api/v1/declarations", &n.customs, body).await;
    assert_eq!(r.status, axum::http::StatusCode::CREATED, "{}", String::from_utf8_lossy(&r.bytes));
    r.json()
}

/// A line denied `CO_NOT_RECEIVED` is granted once its certificate arrives.
#[tokio::test]
async fn a_line_waiting_on_a_number_is_granted_when_the_certificate_arrives() {
    let n = node().await;
    let cert = th_certificate("TH-2026-000301", 3, 5);
    let today = Utc::now().date_naive();
    let half = cert.items[0].quantity.value() / rust_decimal::Decimal::TWO;
    let d = declare(&n, declaration_of("KH-IMP-301", &cert, &half.to_string(), &fob_of(&cert, half), today))
        .await;
    assert_eq!(d["lines"][0]["outcome"], "denied", "{d}");
    assert_eq!(codes(&d["lines"][0]), ["CO_NOT_RECEIVED"], "{d}");
    let id = d["id"].as_i64().expect("id");

    receive(&n, &cert).await;
    let arrival = Arrival::Certificate { issuing_country: "TH".into(), number: "TH-2026-000301".into() };
    originlink_node::app::customs::after_arrivals(&n.state, &[arrival]).await;

    let after = n.get(&format!("/api/v1/declarations/{id}"), &n.customs).await.json();
    assert_eq!(after["lines"][0]["outcome"], "granted", "{after}");
    assert_eq!(after["lines"][0]["consumed"], json!(half.to_string()), "{after}");
    let ledger = n.state.store.utilizations("TH", "TH-2026-000301").await.expect("ledger");
    assert_eq!(ledger.len(), 1, "{ledger:?}");
    assert!(n.state.store.verify_audit().await.expect("audit").is_ok());
}

/// Every message in the outbox (leased, so each is seen once).
async fn outbox(n: &Node) -> Vec<originlink_store::OutboxRow> {
    let later = Utc::now() + Duration::days(1);
    n.state.store.claim_outbox(later, std::time::Duration::from_secs(60), 1000).await.expect("outbox")
}

/// An officer overrides a granted line to denied with a reason: the audit event holds the
/// officer, before, after and reason, the quantity goes back to the ledger, and the new
/// status is on its way to the issuing country.
#[tokio::test]
async fn an_override_is_audited_and_its_status_goes_to_the_issuer() {
    let n = crate::api::node_with(false, true).await;
    let cert = th_certificate("TH-2026-000302", 4, 5);
    receive(&n, &cert).await;
    let qty = cert.items[0].quantity.value() / rust_decimal::Decimal::TWO;
    let today = Utc::now().date_naive();
    let d =
        declare(&n, declaration_of("KH-IMP-302", &cert, &qty.to_string(), &fob_of(&cert, qty), today)).await;
    assert_eq!(d["lines"][0]["outcome"], "granted", "{d}");
    let id = d["id"].as_i64().expect("id");
    let first = outbox(&n).await;
    assert_eq!(
        first.iter().map(|m| (m.recipient.as_str(), m.kind.as_str())).collect::<Vec<_>>(),
        [("TH", "status.update")]
    );

    let path = format!("/api/v1/declarations/{id}/lines/1/decision");
    // A reason is required, an override needs its outcome, a missing line is not found.
    let bad = [
        (json!({"action": "override", "outcome": "denied", "reason": " "}), "REASON_REQUIRED"),
        (json!({"action": "override", "outcome": "denied", "reason": "x".repeat(1001)}), "REASON_REQUIRED"),
        (json!({"action": "override", "reason": "looks wrong"}), "OUTCOME_REQUIRED"),
        (json!({"action": "redecide", "outcome": "granted", "reason": "again"}), "OUTCOME_NOT_ALLOWED"),
    ];
    for (body, code) in bad {
        let r = n.post_json(&path, &n.customs, body).await;
        assert_eq!(
            (r.status.as_u16(), r.code()),
            (400, code.to_owned()),
            "{}",
            String::from_utf8_lossy(&r.bytes)
        );
    }
    let body = json!({"action": "override", "outcome": "denied", "reason": "the goods were inspected"});
    let missing =
        n.post_json(&format!("/api/v1/declarations/{id}/lines/9/decision"), &n.customs, body.clone()).await;
    assert_eq!(missing.status.as_u16(), 404);
    // Not the issuing officer's.
    assert_eq!(n.post_json(&path, &n.officer, body.clone()).await.status.as_u16(), 403);
    let (head, _) = n.state.store.audit_head().await.expect("head");

    let r = n.post_json(&path, &n.customs, body).await;
    assert_eq!(r.status.as_u16(), 200, "{}", String::from_utf8_lossy(&r.bytes));
    let line = &r.json()["lines"][0];
    assert_eq!(line["outcome"], "denied", "{line}");
    assert!(codes(line).contains(&"OFFICER_DECISION".to_owned()), "{line}");
    assert_eq!(line["consumed"], Value::Null, "{line}");
    assert!(n.state.store.utilizations("TH", "TH-2026-000302").await.expect("uses").is_empty());

    let events = n.state.store.audit_events(head, i64::MAX, 100).await.expect("events");
    let e = events.iter().find(|e| e.action == "declaration.line_overridden").expect("override audited");
    assert!(e.actor.contains("dave"), "{e:?}");
    let (before, after): (Value, Value) =
        (serde_json::from_str(&e.before).expect("json"), serde_json::from_str(&e.after).expect("json"));
    assert_eq!((before["outcome"].as_str(), after["outcome"].as_str()), (Some("granted"), Some("denied")));
    assert_eq!(after["officer_reason"], "the goods were inspected");
    assert!(events.iter().any(|e| e.action == "ledger.released"), "{events:?}");

    let sent = outbox(&n).await;
    assert_eq!(
        sent.iter().map(|m| (m.recipient.as_str(), m.kind.as_str())).collect::<Vec<_>>(),
        [("TH", "status.update")]
    );

    // Re-deciding runs the rules again: granted once more, the officer's reason kept.
    let again = json!({"action": "redecide", "reason": "inspection cleared"});
    let r = n.post_json(&path, &n.customs, again).await;
    assert_eq!(r.json()["lines"][0]["outcome"], "granted", "{}", r.json());
    let events = n.state.store.audit_events(head, i64::MAX, 100).await.expect("events");
    assert!(
        events
            .iter()
            .any(|e| e.action == "declaration.line_redecided" && e.after.contains("inspection cleared"))
    );
    assert_eq!(outbox(&n).await.len(), 1);
    assert!(n.state.store.verify_audit().await.expect("audit").is_ok());
}

fn risk_codes(d: &Value) -> Vec<String> {
    d["risk"]["reasons"]
        .as_array()
        .map(|a| a.iter().filter_map(|r| r["code"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// The second declaration of an exporter → importer pair (after a granted one, the importer's
/// name spelt differently) scores lower than the first.
#[tokio::test]
async fn a_repeat_importer_scores_lower_than_a_first_time_one() {
    let n = node().await;
    let today = Utc::now().date_naive();
    let (a, b) = (th_certificate("TH-2026-000311", 5, 5), th_certificate("TH-2026-000312", 5, 4));
    receive(&n, &a).await;
    receive(&n, &b).await;
    let half = |c: &Certificate| c.items[0].quantity.value() / rust_decimal::Decimal::TWO;
    let first =
        declare(&n, declaration_of("KH-IMP-311", &a, &half(&a).to_string(), &fob_of(&a, half(&a)), today))
            .await;
    assert_eq!(first["lines"][0]["outcome"], "granted", "{first}");
    assert!(risk_codes(&first).contains(&"FIRST_TIME_PAIR".to_owned()), "{first}");
    let mut body = declaration_of("KH-IMP-312", &b, &half(&b).to_string(), &fob_of(&b, half(&b)), today);
    body["importer"]["name"] = json!(b.consignee.name.to_uppercase());
    let second = declare(&n, body).await;
    assert_eq!(second["lines"][0]["outcome"], "granted", "{second}");
    assert!(!risk_codes(&second).contains(&"FIRST_TIME_PAIR".to_owned()), "{second}");
    assert!(
        second["risk"]["score"].as_i64() < first["risk"]["score"].as_i64(),
        "{} then {}",
        first["risk"],
        second["risk"]
    );
}

/// `VALUE_GAP` (declared value far from the item's pro-rata FOB) and `NEAR_EXHAUSTION` (the
/// line leaves little of the item) fire; a line at FOB taking half fires neither.
#[tokio::test]
async fn value_gap_and_near_exhaustion_fire() {
    let n = node().await;
    let today = Utc::now().date_naive();
    let (a, b) = (th_certificate("TH-2026-000321", 6, 5), th_certificate("TH-2026-000322", 7, 5));
    receive(&n, &a).await;
    receive(&n, &b).await;
    let total = a.items[0].quantity.value();
    let half = total / rust_decimal::Decimal::TWO;
    let three_times = (fob_of(&a, half).parse::<rust_decimal::Decimal>().expect("fob")
        * rust_decimal::Decimal::from(3))
    .to_string();
    let gap = declare(&n, declaration_of("KH-IMP-321", &a, &half.to_string(), &three_times, today)).await;
    assert!(risk_codes(&gap).contains(&"VALUE_GAP".to_owned()), "{gap}");
    assert!(!risk_codes(&gap).contains(&"NEAR_EXHAUSTION".to_owned()), "{gap}");
    let most = (b.items[0].quantity.value() * rust_decimal::Decimal::new(95, 2)).round();
    let near =
        declare(&n, declaration_of("KH-IMP-322", &b, &most.to_string(), &fob_of(&b, most), today)).await;
    assert_eq!(near["lines"][0]["outcome"], "granted", "{near}");
    assert!(risk_codes(&near).contains(&"NEAR_EXHAUSTION".to_owned()), "{near}");
    assert!(!risk_codes(&near).contains(&"VALUE_GAP".to_owned()), "{near}");
}

/// A line decided today for a declaration dated last month counts in last month's report,
/// not today's; a line still pending is listed, not dropped.
#[tokio::test]
async fn revenue_counts_lines_by_declaration_date() {
    let n = node().await;
    let today = Utc::now().date_naive();
    let dated = today - Duration::days(35);
    let cert = th_certificate("TH-2026-000331", 8, 40);
    let mut body = declaration_of("KH-IMP-331", &cert, "10", "100.00", dated);
    let mut pending = body["lines"][0].clone();
    pending["line_no"] = json!(2);
    pending["eco"] = json!("PENDING");
    body["lines"].as_array_mut().expect("lines").push(pending);
    let d = declare(&n, body).await;
    assert_eq!(d["lines"][0]["outcome"], "denied", "{d}");
    assert_eq!(d["lines"][1]["outcome"], "pending", "{d}");
    let report = |from: NaiveDate, to: NaiveDate| {
        let n = &n;
        async move {
            let path = format!("/api/v1/revenue?from={from}&to={to}");
            let r = n.get(&path, &n.customs).await;
            assert_eq!(r.status.as_u16(), 200, "{}", String::from_utf8_lossy(&r.bytes));
            r.json()
        }
    };
    let then = report(dated, dated + Duration::days(1)).await;
    assert_eq!(then["lines"], 1, "{then}");
    assert_eq!(then["undecided"][0]["declaration"], "KH-IMP-331", "{then}");
    assert_eq!(then["undecided"][0]["line_no"], 2, "{then}");
    assert_eq!(then["undecided"][0]["reasons"], json!(["PENDING"]), "{then}");
    assert_eq!(then["complete"], false, "{then}");
    let now = report(today, today + Duration::days(1)).await;
    assert_eq!((now["lines"].as_i64(), now["complete"].as_bool()), (Some(0), Some(true)), "{now}");
}

/// A received certificate read by customs shows its parties, its goods and what is left of
/// each item once a declaration used part of it.
#[tokio::test]
async fn a_received_certificate_shows_its_goods_parties_and_what_is_left() {
    let n = node().await;
    let cert = th_certificate("TH-2026-000401", 4, 5);
    receive(&n, &cert).await;
    let total = cert.items[0].quantity.value();
    let used = total / rust_decimal::Decimal::TWO;
    let today = Utc::now().date_naive();
    let d = declare(&n, declaration_of("KH-IMP-401", &cert, &used.to_string(), &fob_of(&cert, used), today))
        .await;
    assert_eq!(d["lines"][0]["outcome"], "granted", "{d}");
    let list = n.get("/api/v1/received?number=TH-2026-000401", &n.customs).await.json();
    let id = list[0]["id"].as_i64().expect("received id");
    let r = n.get(&format!("/api/v1/received/{id}"), &n.customs).await.json();
    assert_eq!(r["exporter"]["name"], cert.exporter.name.as_str(), "{r}");
    assert_eq!(r["consignee"]["name"], cert.consignee.name.as_str(), "{r}");
    assert_eq!(r["goods"].as_array().map(Vec::len), Some(cert.items.len()), "{r}");
    let first = &r["goods"][0];
    assert_eq!(first["hs"], cert.items[0].hs.dotted(), "{r}");
    let left: rust_decimal::Decimal =
        first["remaining"].as_str().expect("remaining").parse().expect("decimal");
    assert_eq!(left, total - used, "{r}");
    // The list stays light: no goods there.
    assert!(list[0].get("goods").is_none(), "{list}");
}
