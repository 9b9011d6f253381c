//! An exporter applies through the form: a bill of materials checked against the rule of
//! origin, a draft saved, then submitted; a missing field is explained and nothing typed is
//! lost; a document can also be uploaded.

use originlink_browser::Browser;

use crate::support::{
    ConsoleNode, PASSWORD, Pages, WAIT, click_and_wait, document, field_value, path, sign_in, submit_sign_in,
};

/// The goods item and its bill of materials: ATIGA's rule for 9401.61 (upholstered wooden
/// seats) is met by a change of heading (fabric of 5407 and sawn wood of 4407 become seats of
/// 9401) and by the value: (4800 − 600) / 4800 = 87.5 % regional value content.
async fn fill_application(b: &Browser, consignee: &str) -> anyhow::Result<()> {
    b.fill("Agreement", "ATIGA (Form D)").await?;
    b.fill("Importing country", "Thailand").await?;
    b.fill("Your reference", "PO-2026-118").await?;
    b.fill_name("consignee_name", consignee).await?;
    b.fill_name("consignee_city", "Bangkok").await?;
    b.fill("Vessel or flight", "MV Mekong Star").await?;
    b.fill("Port of loading", "Sihanoukville").await?;
    b.fill("Port of discharge", "Laem Chabang").await?;
    b.fill_name("item-1-description", "Wooden chairs").await?;
    b.fill_name("item-1-hs", "9401.61").await?;
    b.fill_name("item-1-quantity", "120").await?;
    b.fill_name("item-1-fob", "4800.00").await?;
    b.fill_name("item-1-packages", "12").await?;
    b.fill_name("item-1-invoice_number", "INV-2026-0042").await?;
    b.fill_name("item-1-invoice_date", "2026-03-01").await?;
    b.fill_name("material-1-name", "Sawn rubberwood").await?;
    b.fill_name("material-1-hs", "4407.29").await?;
    b.fill_name("material-1-value", "900.00").await?;
    b.fill_name("material-1-origin", "KH").await?;
    b.fill_name("material-1-status", "Originating").await?;
    b.fill_name("material-2-name", "Upholstery fabric").await?;
    b.fill_name("material-2-hs", "5407.61").await?;
    b.fill_name("material-2-value", "600.00").await?;
    b.fill_name("material-2-origin", "CN").await?;
    b.fill_name("material-2-status", "Non-originating").await?;
    b.fill("Signed by", "Sokha Chan, Export Manager").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exporter_applies_by_form_with_a_bill_of_materials_and_submits() {
    let node = ConsoleNode::start().await;
    let b = Browser::start().await.expect("chromium starts");
    let mut pages = Pages::new();

    // A page that needs a session sends to the sign-in page, and back afterwards.
    b.goto(&node.url("/applications")).await.unwrap();
    b.wait_for_text("User name", WAIT).await.unwrap();
    assert_eq!(path(&b).await, "/sign-in?next=/applications");
    pages.check(&b, "sign-in").await;
    submit_sign_in(&b, "alice", PASSWORD).await.unwrap();
    b.wait_for_text("Sign out", WAIT).await.unwrap();
    assert_eq!(path(&b).await, "/applications");

    // Chromium keeps the `__Host-`, `Secure` cookie that plain http on 127.0.0.1 sets.
    let cookie = b.cookie(&node.cookie).await.unwrap().expect("the session cookie is kept");
    assert!(cookie.secure && cookie.http_only, "{cookie:?}");
    assert_eq!(cookie.same_site.as_deref(), Some("Strict"), "{cookie:?}");
    assert_eq!((cookie.path.as_deref(), cookie.expiry), (Some("/"), None), "{cookie:?}");
    assert_eq!(cookie.value.len(), 64, "a random session id: {cookie:?}");
    assert!(b.cookie(&format!("{}-login", node.cookie)).await.unwrap().is_none(), "the login token is spent");
    let text = b.text().await.unwrap();
    assert!(text.contains("alice · exporter") && text.contains("No applications yet"), "{text}");
    pages.check(&b, "applications-empty").await;

    // The form, filled but for the consignee's name: refused, explained, nothing lost.
    b.click_link("New application").await.unwrap();
    b.wait_for_text("Agreement and destination", WAIT).await.unwrap();
    assert_eq!(field_value(&b, "exporter_name").await, "Angkor Rice", "the company is the exporter");
    pages.check(&b, "new-application").await;
    fill_application(&b, "").await.unwrap();
    click_and_wait(&b, "Save as draft", "There is a problem").await.unwrap();
    let text = b.text().await.unwrap();
    assert!(text.contains("Enter the consignee's name."), "{text}");
    let summary = b
        .execute(
            "return [...document.querySelectorAll('.error-summary a')].map(a => a.getAttribute('href') + ' ' + a.textContent);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        summary,
        serde_json::json!(["#consignee_name Enter the consignee's name."]),
        "one error, linked to its field"
    );
    let invalid = b
        .execute("const e = document.getElementById('consignee_name'); return [e.getAttribute('aria-invalid'), e.getAttribute('aria-describedby')];", vec![])
        .await
        .unwrap();
    assert_eq!(invalid, serde_json::json!(["true", "consignee_name-error"]));
    for (id, typed) in [
        ("item-1-description", "Wooden chairs"),
        ("item-1-hs", "9401.61"),
        ("item-1-fob", "4800.00"),
        ("item-1-invoice_number", "INV-2026-0042"),
        ("material-2-name", "Upholstery fabric"),
        ("material-2-origin", "CN"),
        ("material-1-status", "originating"),
        ("importing_country", "TH"),
        ("discharge_port", "Laem Chabang"),
        ("declaration_signatory", "Sokha Chan, Export Manager"),
    ] {
        assert_eq!(field_value(&b, id).await, typed, "{id} keeps what was typed");
    }
    pages.check(&b, "new-application-errors").await;

    // Check origin: the assessment, its RVC and how each rule was tested.
    b.fill_name("consignee_name", "Siam Furniture Co., Ltd.").await.unwrap();
    click_and_wait(&b, "Check origin", "Goods item 1 originates").await.unwrap();
    let text = b.text().await.unwrap();
    assert!(!text.contains("There is a problem"), "{text}");
    // The percentage as the rules engine gives it ("87.5000"): see the report.
    assert!(text.contains("Regional value content: 87.5"), "{text}");
    assert!(text.contains("Goods item 1 originates: criterion 40%."), "{text}");
    assert!(text.contains("How each rule was tested") && text.contains("Each material"), "{text}");
    let rules = b
        .execute(
            "return [...document.querySelectorAll('.assessment table')].map(t => [t.caption.textContent, t.tBodies[0].rows.length]);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(rules[0][0], "How each rule was tested", "{rules}");
    assert!(rules[0][1].as_u64().unwrap_or(0) >= 1, "{rules}");
    assert_eq!(rules[1], serde_json::json!(["Each material", 2]), "{rules}");
    assert_eq!(field_value(&b, "consignee_name").await, "Siam Furniture Co., Ltd.");
    pages.check_at(&b, "new-application-assessment", Some(".assessment")).await;

    // Save: the flash, the application page as the certificate will read.
    click_and_wait(&b, "Save as draft", "saved as a draft").await.unwrap();
    let at = path(&b).await;
    let id: i64 =
        at.strip_prefix("/applications/").and_then(|i| i.parse().ok()).unwrap_or_else(|| panic!("on {at}"));
    let text = b.text().await.unwrap();
    assert!(
        text.contains(&format!("Application {id} saved as a draft. Check it, then submit it.")),
        "{text}"
    );
    assert!(text.contains("Siam Furniture Co., Ltd.") && text.contains("Wooden chairs"), "{text}");
    assert!(text.contains("HS 9401.61") && text.contains("USD 4,800.00"), "{text}");
    assert!(text.contains("Goods item 1 originates"), "the stored self-assessment: {text}");
    assert!(
        !text.contains("What the officer will be warned about"),
        "no warning for a consistent application: {text}"
    );
    assert_eq!(node.status(id).await, "draft");
    pages.check(&b, "application-exporter-draft").await;

    // The flash shows once.
    b.goto(&node.url(&format!("/applications/{id}"))).await.unwrap();
    assert!(!b.text().await.unwrap().contains("saved as a draft"));

    click_and_wait(&b, "Submit for approval", "submitted. The issuing authority will review it.")
        .await
        .unwrap();
    let source = b.page_source().await.unwrap();
    assert!(source.contains(r#"<strong class="tag tag-submitted">Submitted</strong>"#), "{source}");
    assert_eq!(node.status(id).await, "submitted");
    pages.check(&b, "application-exporter-submitted").await;

    // An upload is the other way in.
    b.goto(&node.url("/applications/upload")).await.unwrap();
    b.wait_for_text("Upload a document", WAIT).await.unwrap();
    pages.check(&b, "upload").await;
    let file = std::env::temp_dir().join(format!("originlink-console-upload-{}.json", std::process::id()));
    std::fs::write(&file, document("Angkor Rice", 3).to_string()).unwrap();
    b.upload("UBL 2.4 XML or edi3 JSON file", &file).await.unwrap();
    // With its bill of materials: the self-assessment is evaluated and shown.
    let bom = std::env::temp_dir().join(format!("originlink-console-bom-{}.json", std::process::id()));
    std::fs::write(&bom, crate::support::not_originating_assessment(3).to_string()).unwrap();
    b.upload("Bill of materials (optional)", &bom).await.unwrap();
    click_and_wait(&b, "Upload and check", "saved as a draft").await.unwrap();
    let text = b.text().await.unwrap();
    assert!(text.contains("Goods item 1 does not originate under this agreement's rule."), "{text}");
    assert!(text.contains("The self-assessment says the goods do not originate"), "the warning: {text}");
    let _ = std::fs::remove_file(&file);
    let _ = std::fs::remove_file(&bom);

    b.click_link("Applications").await.unwrap();
    b.wait_for_text(&format!("Application {id}"), WAIT).await.unwrap();
    let source = b.page_source().await.unwrap();
    assert!(source.contains("tag-submitted") && source.contains("tag-draft"), "{source}");
    pages.check(&b, "applications").await;

    b.close().await.unwrap();
    pages.finish();
}

/// Names and addresses typed in Khmer, Thai and Vietnamese script come back as typed, on the
/// form after an error, on the application page and in the stored document: never as `?` or
/// entities shown to people.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn khmer_thai_and_vietnamese_names_appear_as_typed() {
    let node = ConsoleNode::start().await;
    let b = Browser::start().await.expect("chromium starts");
    let mut pages = Pages::new();
    sign_in(&b, &node, "alice", PASSWORD).await.unwrap();
    b.goto(&node.url("/applications/new")).await.unwrap();
    b.wait_for_text("Agreement and destination", WAIT).await.unwrap();
    let (khmer, thai, viet) = ("ក្រុមហ៊ុន អង្គរ រ៉ាយស៍", "บริษัท สยามเฟรช เทรดดิ้ง จำกัด", "Gỗ cao su xẻ, đã sấy");
    fill_application(&b, thai).await.unwrap();
    b.fill_name("exporter_street", khmer).await.unwrap();
    b.fill_name("material-1-name", viet).await.unwrap();
    // One required field left empty: the page comes back with everything as typed.
    b.fill_name("discharge_port", "").await.unwrap();
    click_and_wait(&b, "Save as draft", "There is a problem").await.unwrap();
    assert_eq!(field_value(&b, "consignee_name").await, thai);
    assert_eq!(field_value(&b, "exporter_street").await, khmer);
    assert_eq!(field_value(&b, "material-1-name").await, viet);
    b.fill_name("discharge_port", "Laem Chabang").await.unwrap();
    click_and_wait(&b, "Save as draft", "saved as a draft").await.unwrap();
    let text = b.text().await.unwrap();
    assert!(text.contains(thai) && text.contains(khmer), "{text}");
    pages.check(&b, "application-in-three-scripts").await;
    let id: i64 = path(&b).await.trim_start_matches("/applications/").parse().expect("an application page");
    let stored = node.state.store.application(id).await.expect("storage").expect("stored");
    let doc = String::from_utf8(stored.document).expect("UTF-8");
    assert!(doc.contains(thai) && doc.contains(khmer), "the document holds the names as typed: {doc}");
    assert!(
        stored.self_assessment.as_deref().is_some_and(|a| a.contains(viet)),
        "{:?}",
        stored.self_assessment
    );
    pages.finish();
}
