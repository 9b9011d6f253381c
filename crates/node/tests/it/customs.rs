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
