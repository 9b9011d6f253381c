//! An administrator adds a user and disables another, whose open session then stops
//! working; the exchange, trust list, audit log and keys pages.

use originlink_browser::Browser;
use originlink_node::app::sessions;

use crate::support::{ConsoleNode, PASSWORD, Pages, WAIT, click_and_wait, path, sign_in};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_disables_a_user_whose_session_then_stops_working() {
    let node = ConsoleNode::start().await;
    // Something for the exchange page to show: a certificate waiting to be sent to TH.
    node.issued(&node.alice, "Angkor Rice", 1).await;
    let (alice, erin) = tokio::join!(Browser::start(), Browser::start());
    let (alice, erin) = (alice.expect("chromium starts"), erin.expect("chromium starts"));
    let mut pages = Pages::new();

    sign_in(&alice, &node, "alice", PASSWORD).await.unwrap();
    alice.wait_for_text("Applications", WAIT).await.unwrap();
    sign_in(&erin, &node, "erin", PASSWORD).await.unwrap();
    assert_eq!(path(&erin).await, "/admin/users", "an administrator starts at the users");
    let text = erin.text().await.unwrap();
    for name in ["alice", "carol", "bob", "erin"] {
        assert!(text.contains(name), "{name} listed: {text}");
    }
    pages.check(&erin, "users").await;

    // A user with a password of their own, who can then sign in.
    erin.fill("User name", "dara").await.unwrap();
    erin.fill("Role", "issuing officer").await.unwrap();
    erin.fill("Password", "tonle sap at dusk").await.unwrap();
    click_and_wait(&erin, "Add user", "User dara added. They can sign in with the password you set.")
        .await
        .unwrap();
    assert!(
        sessions::sign_in(&node.state, "dara", "tonle sap at dusk").await.is_ok(),
        "dara's password works"
    );
    // A password too short is refused beside its field, what was typed kept.
    erin.fill("User name", "sreyleak").await.unwrap();
    erin.fill("Role", "exporter").await.unwrap();
    erin.fill("Company", "Mekong Cashew").await.unwrap();
    erin.fill("Password", "short").await.unwrap();
    click_and_wait(&erin, "Add user", "There is a problem").await.unwrap();
    let text = erin.text().await.unwrap();
    assert!(text.contains("The password is too short."), "{text}");
    assert_eq!(crate::support::field_value(&erin, "name").await, "sreyleak");
    assert_eq!(crate::support::field_value(&erin, "company").await, "Mekong Cashew");
    let users = originlink_node::app::users::list(node.state.store.as_ref()).await.unwrap();
    assert!(!users.iter().any(|u| u.name == "sreyleak"), "not added");
    pages.check(&erin, "users-errors").await;

    // Disable alice: her open session ends at once.
    erin.click_link("alice").await.unwrap();
    erin.wait_for_text("Disable this user", WAIT).await.unwrap();
    assert!(erin.text().await.unwrap().contains("alice will be signed out at once"));
    pages.check(&erin, "user").await;
    click_and_wait(&erin, "Disable user", "User alice disabled. Their sessions have ended.").await.unwrap();
    assert!(erin.text().await.unwrap().contains("Disabled since"));
    pages.check(&erin, "user-disabled").await;

    alice.goto(&node.url("/certificates")).await.unwrap();
    alice.wait_for_text("User name", WAIT).await.unwrap();
    assert_eq!(path(&alice).await, "/sign-in?next=/certificates", "alice's session no longer works");
    assert!(!alice.text().await.unwrap().contains("Sign out"));
    // And her password does not start a new one.
    crate::support::submit_sign_in(&alice, "alice", PASSWORD).await.unwrap();
    alice.wait_for_text("The user name or the password is not right.", WAIT).await.unwrap();

    // The node's other pages.
    erin.click_link("Exchange").await.unwrap();
    erin.wait_for_text("Messages waiting to be delivered", WAIT).await.unwrap();
    let text = erin.text().await.unwrap();
    assert!(!text.contains("Nothing waits to be delivered."), "the issued certificate waits for TH: {text}");
    pages.check(&erin, "exchange").await;
    erin.click_link("Trust list").await.unwrap();
    erin.wait_for_text("Next list due", WAIT).await.unwrap();
    let text = erin.text().await.unwrap();
    assert!(text.contains("Cambodia (KH)") && text.contains("Thailand (TH)"), "{text}");
    pages.check(&erin, "trust-list").await;
    click_and_wait(
        &erin,
        "Read the trust list file again",
        "The file holds list 1 or an older one: nothing changed.",
    )
    .await
    .unwrap();
    erin.click_link("Audit log").await.unwrap();
    erin.wait_for_text("events in the chain", WAIT).await.unwrap();
    pages.check(&erin, "audit").await;
    click_and_wait(&erin, "Verify the whole chain", "The chain is intact").await.unwrap();
    erin.click_link("Keys").await.unwrap();
    erin.wait_for_text("Keys and certificates", WAIT).await.unwrap();
    assert!(erin.text().await.unwrap().contains("days left"));
    pages.check(&erin, "keys").await;
    // An administrator does not review: the page says so.
    erin.goto(&node.url("/review")).await.unwrap();
    erin.wait_for_text("This page is not for your role", WAIT).await.unwrap();

    alice.close().await.unwrap();
    erin.close().await.unwrap();
    pages.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invited_user_chooses_a_password_and_signs_in() {
    let node = ConsoleNode::start().await;
    let b = Browser::start().await.expect("chromium starts");
    let mut pages = Pages::new();

    sign_in(&b, &node, "erin", PASSWORD).await.unwrap();
    b.fill("User name", "sokha").await.unwrap();
    b.fill("Role", "exporter").await.unwrap();
    b.fill("Company", "Kampot Pepper").await.unwrap();
    click_and_wait(&b, "Add user", "Send this link to the user.").await.unwrap();
    assert!(b.text().await.unwrap().contains("User sokha added."));
    let link =
        b.execute("return document.querySelector('code.link-out').textContent;", vec![]).await.unwrap();
    let link = link.as_str().unwrap().to_owned();
    assert!(link.contains("/invitation/"), "{link}");
    // Sent by mail, the link must work on its own: scheme and host.
    let absolute = link.starts_with("http://") || link.starts_with("https://");
    let url = if absolute { link.clone() } else { format!("http:{link}") };
    click_and_wait(&b, "Sign out", "User name").await.unwrap();

    b.goto(&url).await.unwrap();
    b.wait_for_text("Choose your password", WAIT).await.unwrap();
    pages.check(&b, "invitation").await;
    b.fill("New password", "black pepper of kampot").await.unwrap();
    b.fill("Type the password again", "black pepper of kampoT").await.unwrap();
    click_and_wait(&b, "Set password", "The two passwords are not the same.").await.unwrap();
    b.fill("New password", "black pepper of kampot").await.unwrap();
    b.fill("Type the password again", "black pepper of kampot").await.unwrap();
    click_and_wait(&b, "Set password", "Password set for sokha").await.unwrap();
    // Once only.
    b.goto(&url).await.unwrap();
    b.fill("New password", "another pepper password").await.unwrap();
    b.fill("Type the password again", "another pepper password").await.unwrap();
    click_and_wait(&b, "Set password", "This invitation link does not work").await.unwrap();
    sign_in(&b, &node, "sokha", "black pepper of kampot").await.unwrap();
    assert!(b.text().await.unwrap().contains("sokha · exporter"));

    b.close().await.unwrap();
    pages.finish();
    assert!(
        absolute,
        "the invitation link shown to the administrator is {link:?}: no scheme, so it is no link in a mail"
    );
}
