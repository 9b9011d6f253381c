//! Importing customs end to end, with a gateway and two nodes as separate processes: a
//! declaration decided against a received certificate (granted, duty computed) and the
//! utilization reported back to the issuing country; over-use denied; a `PENDING` line
//! matched automatically when its certificate arrives; and a verification request that goes
//! overdue (the importing node restarted with its clock moved on), is answered "denied" by
//! the issuing officer, and denies the preference on the lines that used the certificate.

use originlink_model::Certificate;
use originlink_region::Api;
use serde_json::{Value, json};

use crate::exchange::{eventually, gateway, node, received, rt, two};
use crate::support::tempdir;

/// A declaration line for item `item` of `cert` (quantity `qty`).
fn line(no: u32, cert: &Certificate, item: usize, qty: &str, eco: Value) -> Value {
    let it = &cert.items[item];
    json!({
        "line_no": no,
        "hs_code": it.hs.dotted(),
        "description": it.description,
        "quantity": qty,
        "unit": it.quantity.unit().as_str(),
        "customs_value": { "amount": it.fob.as_ref().map(|m| m.amount_text()).unwrap_or_else(|| "100.00".into()), "currency": "USD" },
        "origin_country": "KH",
        "claimed_agreement": "ATIGA",
        "eco": eco,
        "invoice_number": it.invoice.number,
    })
}

fn declaration(number: &str, cert: &Certificate, lines: Vec<Value>) -> Value {
    json!({
        "number": number,
        "importer": { "name": cert.consignee.name, "id": cert.consignee.id },
        "importing_country": "TH",
        "declaration_date": chrono::Utc::now().date_naive().format("%Y-%m-%d").to_string(),
        "lines": lines,
    })
}

async fn th_certificate(th: &Api, number: &str) -> Certificate {
    let r = eventually("the certificate at TH", 60, || received(th, number, 1)).await;
    assert_eq!(r["status"], "valid", "{r}");
    let doc = th.ok("GET", r["document"].as_str().expect("link"), "th-customs", None).await.expect("doc");
    let xml = doc.as_str().expect("xml text").as_bytes().to_vec();
    originlink_formats::read(&xml, &originlink_formats::Limits::default()).expect("readable").1
}

async fn statuses(kh: &Api, id: i64) -> Vec<Value> {
    let v = kh.ok("GET", &format!("/api/v1/certificates/{id}/statuses"), "kh-officer", None).await;
    v.ok().and_then(|v| v.as_array().cloned()).unwrap_or_default()
}

fn codes(line: &Value) -> Vec<String> {
    line["reasons"]
        .as_array()
        .map(|a| a.iter().filter_map(|r| r["code"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

#[test]
fn declarations_ledger_pending_and_verification_across_processes() {
    let dir = tempdir("customs-e2e");
    let rt = rt();
    let region = rt.block_on(originlink_region::setup(&dir, &two(false))).expect("region");
    let _g = gateway(&region);
    let _kh = node(&region, "KH");
    let mut th_proc = node(&region, "TH");
    let kh = region.api("KH").expect("api");
    let th = region.api("TH").expect("api");
    let now = chrono::Utc::now();

    // A: two items, issued in KH, received in TH.
    let doc_a = originlink_region::application_document("KH", "TH", 41, 2, now).expect("doc");
    let a = rt.block_on(originlink_region::issue(&kh, "KH", "angkor", doc_a, None)).expect("issued");
    let a_number = a["number"].as_str().expect("number").to_owned();
    let a_id = a["id"].as_i64().expect("id");
    let cert_a = rt.block_on(th_certificate(&th, &a_number));
    let eco_a = json!({"issuing_country": "KH", "number": a_number});
    let q1 = cert_a.items[0].quantity.value().to_string();
    let half2 = (cert_a.items[1].quantity.value() / rust_decimal::Decimal::from(2)).to_string();

    // D1: all of item 1, half of item 2: granted, with duty.
    let d1 = declaration(
        "TH-IMP-E2E-1",
        &cert_a,
        vec![line(1, &cert_a, 0, &q1, eco_a.clone()), line(2, &cert_a, 1, &half2, eco_a.clone())],
    );
    let r = rt.block_on(th.ok("POST", "/api/v1/declarations", "th-customs", Some(d1))).expect("declared");
    for l in r["lines"].as_array().expect("lines") {
        assert_eq!(l["outcome"], "granted", "{l}");
        assert!(l["duty"]["due"]["amount"].is_string(), "{l}");
    }
    // The issuing side hears of it: utilized, with the declaration number.
    let s = rt.block_on(eventually("the utilization at KH", 60, || async {
        let s = statuses(&kh, a_id).await;
        s.iter().find(|x| x["status"] == "utilized-partially" || x["status"] == "utilized-fully").cloned()
    }));
    assert_eq!(s["detail"]["declaration"], "TH-IMP-E2E-1", "{s}");
    assert!(["12", "13"].contains(&s["code"].as_str().unwrap_or_default()), "{s}");

    // D2: more of item 2 than is left: denied QUANTITY_EXCEEDED, reported as rejected.
    let too_much = cert_a.items[1].quantity.value().to_string();
    let d2 = declaration("TH-IMP-E2E-2", &cert_a, vec![line(1, &cert_a, 1, &too_much, eco_a.clone())]);
    let r = rt.block_on(th.ok("POST", "/api/v1/declarations", "th-customs", Some(d2))).expect("declared");
    let l = &r["lines"][0];
    assert_eq!(l["outcome"], "denied", "{l}");
    assert!(codes(l).contains(&"QUANTITY_EXCEEDED".to_owned()), "{l}");
    rt.block_on(eventually("the rejection at KH", 60, || async {
        statuses(&kh, a_id)
            .await
            .into_iter()
            .find(|x| x["status"] == "rejected" && x["detail"]["declaration"] == "TH-IMP-E2E-2")
    }));

    // D3: a PENDING line filed before its certificate exists; matched when it arrives.
    let doc_b = originlink_region::application_document("KH", "TH", 42, 1, now).expect("doc");
    let cert_b_preview: Certificate =
        originlink_formats::read(doc_b.to_string().as_bytes(), &originlink_formats::Limits::default())
            .expect("readable")
            .1;
    let qb = cert_b_preview.items[0].quantity.value().to_string();
    let d3 = declaration(
        "TH-IMP-E2E-3",
        &cert_b_preview,
        vec![line(1, &cert_b_preview, 0, &qb, json!("PENDING"))],
    );
    let r = rt.block_on(th.ok("POST", "/api/v1/declarations", "th-customs", Some(d3))).expect("declared");
    assert_eq!(r["lines"][0]["outcome"], "pending", "{r}");
    let d3_id = r["id"].as_i64().expect("id");
    let b = rt.block_on(originlink_region::issue(&kh, "KH", "angkor", doc_b, None)).expect("issued");
    let l = rt.block_on(eventually("the PENDING line matched", 60, || async {
        let d = th.ok("GET", &format!("/api/v1/declarations/{d3_id}"), "th-customs", None).await.ok()?;
        (d["lines"][0]["outcome"] != "pending").then(|| d["lines"][0].clone())
    }));
    assert_eq!(l["outcome"], "granted", "{l}");
    assert_eq!(l["eco"]["number"], b["number"], "the PENDING line now names its certificate: {l}");

    // Verification: raised with a one-day deadline, overdue two days later, answered "denied".
    let v = rt
        .block_on(th.ok(
            "POST",
            "/api/v1/verifications",
            "th-customs",
            Some(json!({"issuing_country": "KH", "number": a_number, "questions": ["Who produced item 1?"], "deadline_days": 1})),
        ))
        .expect("raised");
    assert_eq!((v["status"].as_str(), v["overdue"].as_bool()), (Some("open"), Some(false)), "{v}");
    let overdue =
        rt.block_on(th.ok("GET", "/api/v1/verifications?overdue=true", "th-customs", None)).expect("list");
    assert_eq!(overdue.as_array().map(Vec::len), Some(0), "not overdue yet: {overdue}");
    let incoming = rt.block_on(eventually("the request at KH", 60, || async {
        let l = kh.ok("GET", "/api/v1/verifications?direction=incoming", "kh-officer", None).await.ok()?;
        l.as_array()?.first().cloned()
    }));
    assert_eq!(incoming["number"], a_number.as_str());
    // Two days later at TH.
    th_proc.kill9();
    th_proc.envs = vec![("ORIGINLINK__CLOCK__OFFSET_DAYS".into(), "2".into())];
    th_proc.spawn();
    let overdue =
        rt.block_on(th.ok("GET", "/api/v1/verifications?overdue=true", "th-customs", None)).expect("list");
    assert_eq!(overdue.as_array().map(Vec::len), Some(1), "{overdue}");
    assert_eq!(overdue[0]["overdue"], true);
    let vid = incoming["id"].as_i64().expect("id");
    rt.block_on(kh.ok(
        "POST",
        &format!("/api/v1/verifications/{vid}/answer"),
        "kh-officer",
        Some(json!({"answer": "The producer named does not exist.", "outcome": "denied"})),
    ))
    .expect("answered");
    // D1's lines lose the preference.
    let d1 = rt.block_on(eventually("the denial applied", 60, || async {
        let list = th.ok("GET", "/api/v1/declarations", "th-customs", None).await.ok()?;
        let d = list.as_array()?.iter().find(|d| d["number"] == "TH-IMP-E2E-1")?.clone();
        d["lines"].as_array()?.iter().all(|l| l["outcome"] == "denied").then_some(d)
    }));
    for l in d1["lines"].as_array().expect("lines") {
        assert!(codes(l).contains(&"VERIFICATION_DENIED".to_owned()), "{l}");
    }
    let answered = rt
        .block_on(th.ok("GET", "/api/v1/verifications?direction=outgoing", "th-customs", None))
        .expect("list");
    assert_eq!(answered[0]["outcome"], "denied", "{answered}");
    // Revenue over today: every decided line counted.
    let today = chrono::Utc::now().date_naive();
    let rev = rt
        .block_on(th.ok(
            "GET",
            &format!(
                "/api/v1/revenue?from={}&to={}",
                today - chrono::Duration::days(1),
                today + chrono::Duration::days(5)
            ),
            "th-customs",
            None,
        ))
        .expect("revenue");
    assert!(rev["lines"].as_u64().unwrap_or(0) >= 3, "{rev}");
}
