//! An issuing officer works the review queue: a warning on a self-assessment that finds the
//! goods not originating, an application returned with a reason, another approved; the
//! exporter then sees both outcomes.

use originlink_browser::Browser;
use originlink_node::app::applications;

use crate::support::{
    ConsoleNode, PASSWORD, Pages, WAIT, click_and_wait, document, field_value, not_originating_assessment,
    path, sign_in,
};

const REASON: &str = "Attach the supplier's declaration for the imported parts.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn officer_sees_the_warning_returns_one_and_approves_another() {
    let node = ConsoleNode::start().await;
    let warned =
        node.submitted(&node.alice, document("Angkor Rice", 1), Some(not_originating_assessment(1))).await;
    let fine = node.submitted(&node.alice, document("Angkor Rice", 2), None).await;
    let a = applications::get(&node.state, &node.bob, warned).await.unwrap();
    let assessment: serde_json::Value = serde_json::from_str(a.assessment.as_deref().unwrap()).unwrap();
    assert_eq!(assessment["originating"], false, "the set-up: {assessment}");
    let codes: Vec<_> = applications::warnings(&a).iter().map(|w| w.code).collect();
    assert_eq!(codes, ["ASSESSMENT_NOT_ORIGINATING"], "the set-up");
    let b = Browser::start().await.expect("chromium starts");
    let mut pages = Pages::new();

    sign_in(&b, &node, "bob", PASSWORD).await.unwrap();
    assert_eq!(path(&b).await, "/review", "an officer starts at the queue");
    let text = b.text().await.unwrap();
    assert!(text.contains("Oldest first"), "{text}");
    let order = b
        .execute(
            "return [...document.querySelectorAll('main tbody tr td:first-child')].map(td => td.innerText);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(order, serde_json::json!([format!("Application {warned}"), format!("Application {fine}")]));
    pages.check(&b, "review-queue").await;

    // The first: the warning, then back to the exporter with a reason.
    b.click_link(&format!("Application {warned}")).await.unwrap();
    b.wait_for_text("Your decision", WAIT).await.unwrap();
    let text = b.text().await.unwrap();
    assert!(text.contains("Check before approving"), "{text}");
    assert!(text.contains("The self-assessment says the goods do not originate"), "{text}");
    assert!(text.contains("Goods item 1 does not originate under this agreement's rule."), "{text}");
    assert!(!text.contains("Submit for approval"), "no exporter actions for an officer: {text}");
    pages.check(&b, "application-officer").await;
    // Returning without a reason: the browser asks for one (`required`); without that check
    // the console refuses it, and nothing changes.
    b.click_button("Return for correction").await.unwrap();
    let missing =
        b.execute("return document.getElementById('return-reason').validity.valueMissing;", vec![]).await;
    assert_eq!(missing.unwrap(), serde_json::json!(true));
    assert_eq!(path(&b).await, format!("/applications/{warned}"));
    b.execute("document.getElementById('return-reason').required = false;", vec![]).await.unwrap();
    click_and_wait(&b, "Return for correction", "Give a reason of 1 to 1,000 characters.").await.unwrap();
    assert_eq!(node.status(warned).await, "submitted");
    b.fill("What the exporter must correct", REASON).await.unwrap();
    click_and_wait(
        &b,
        "Return for correction",
        &format!("Application {warned} returned to the exporter for correction."),
    )
    .await
    .unwrap();
    assert_eq!(path(&b).await, "/review");
    let left = b.execute("return document.querySelectorAll('main tbody tr').length;", vec![]).await.unwrap();
    assert_eq!(left, serde_json::json!(1), "one application left in the queue");
    assert_eq!(node.status(warned).await, "returned");

    // The other: approved, the certificate issued.
    b.click_link(&format!("Application {fine}")).await.unwrap();
    b.wait_for_text("Your decision", WAIT).await.unwrap();
    assert!(!b.text().await.unwrap().contains("Check before approving"), "no warning on the fine one");
    let number = format!("KH-{}-000001", node.year());
    click_and_wait(
        &b,
        "Approve and issue",
        &format!("Certificate {number} issued and sent to the importing country."),
    )
    .await
    .unwrap();
    assert_eq!(node.status(fine).await, "approved");
    assert!(b.text().await.unwrap().contains("Nothing waits for review."));
    pages.check(&b, "review-queue-empty").await;

    b.click_link("Issued certificates").await.unwrap();
    b.wait_for_text(&number, WAIT).await.unwrap();
    pages.check(&b, "certificates-officer").await;
    b.click_link(&number).await.unwrap();
    b.wait_for_text("Status history", WAIT).await.unwrap();
    pages.check(&b, "certificate-officer").await;
    b.click_link("Revoke").await.unwrap();
    b.wait_for_text("Reason for revoking", WAIT).await.unwrap();
    assert!(b.text().await.unwrap().contains(&format!("Revoking {number} is final.")));
    pages.check(&b, "revoke").await;
    b.click_link("Cancel").await.unwrap();
    b.wait_for_text("Status history", WAIT).await.unwrap();
    b.click_link("Verification requests").await.unwrap();
    b.wait_for_text("No verification requests from other countries.", WAIT).await.unwrap();
    pages.check(&b, "verifications").await;
    b.click_link("Applications").await.unwrap();
    b.wait_for_text(&format!("Application {fine}"), WAIT).await.unwrap();
    pages.check(&b, "applications-officer").await;

    // The exporter sees both outcomes.
    click_and_wait(&b, "Sign out", "User name").await.unwrap();
    assert_eq!(path(&b).await, "/sign-in");
    b.goto(&node.url("/review")).await.unwrap();
    b.wait_for_text("User name", WAIT).await.unwrap();
    assert!(path(&b).await.starts_with("/sign-in"), "signed out for good");
    sign_in(&b, &node, "alice", PASSWORD).await.unwrap();
    let text = b.text().await.unwrap();
    assert!(text.contains(REASON), "the reason is on the list: {text}");
    b.click_link(&format!("Application {warned}")).await.unwrap();
    b.wait_for_text(REASON, WAIT).await.unwrap();
    let source = b.page_source().await.unwrap();
    assert!(source.contains(r#"<strong class="tag tag-returned">Returned</strong>"#), "{source}");
    let text = b.text().await.unwrap();
    assert!(
        text.contains("Submit for approval") && text.contains("Change"),
        "a returned one can be corrected: {text}"
    );
    assert!(
        text.contains("Returned to you for correction") && text.contains("then submit it again"),
        "what to do next, in words: {text}"
    );
    assert!(
        text.contains("What the officer will be warned about") && !text.contains("Check before approving"),
        "the exporter is told what the officer will see, not asked to approve: {text}"
    );
    pages.check(&b, "application-exporter-returned").await;

    // She corrects it: the form comes back filled from the stored document and bill of
    // materials; saved, then submitted again.
    b.click_link("Change").await.unwrap();
    b.wait_for_text(&format!("Change application {warned}"), WAIT).await.unwrap();
    for (id, want) in [
        ("exporter_name", "Angkor Rice".to_owned()),
        ("item-1-hs", "6109.10".to_owned()),
        ("material-1-name", "Imported parts".to_owned()),
        ("material-1-origin", "CN".to_owned()),
    ] {
        assert_eq!(field_value(&b, id).await, want, "{id} filled from the stored application");
    }
    assert!(!field_value(&b, "consignee_name").await.is_empty());
    assert!(b.text().await.unwrap().contains("Goods item 1 does not originate"), "the stored assessment");
    pages.check(&b, "application-form-edit").await;
    click_and_wait(&b, "Save as draft", "saved as a draft").await.unwrap();
    assert_eq!(path(&b).await, format!("/applications/{warned}"), "the same application");
    click_and_wait(&b, "Submit for approval", "submitted").await.unwrap();
    assert_eq!(node.status(warned).await, "submitted");
    b.click_link("Certificates").await.unwrap();
    b.wait_for_text(&number, WAIT).await.unwrap();
    pages.check(&b, "certificates").await;
    b.click_link(&number).await.unwrap();
    b.wait_for_text("Download the signed certificate", WAIT).await.unwrap();
    let text = b.text().await.unwrap();
    assert!(text.contains("Ask for a replacement") && !text.contains("Revoke"), "{text}");
    pages.check(&b, "certificate").await;

    b.close().await.unwrap();
    pages.finish();
}
