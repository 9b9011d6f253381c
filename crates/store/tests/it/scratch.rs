use originlink_store::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scratch_many_writes_then_verify() {
    let db = super::sqlite().await;
    let ctx = Ctx::new("t", chrono::Utc::now());
    for i in 0..300 {
        db.store.create_company(&ctx, &format!("co {i}"), "KH").await.expect("company");
    }
    let first = db.store.verify_audit().await.expect("read");
    eprintln!("first {first:?}");
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let again = db.store.verify_audit().await.expect("read");
    eprintln!("again {again:?}");
    for _ in 0..6 {
        let h = db.store.audit_head_row().await.expect("head");
        let e = db.store.audit_events(h.as_ref().unwrap().0 - 1, h.as_ref().unwrap().0, 1).await.expect("ev");
        eprintln!("head {:?} event {:?}", h.map(|h| h.0), e.first().map(|e| (e.seq, e.hash.clone())));
    }
    assert!(first.is_ok() && again.is_ok());
}
