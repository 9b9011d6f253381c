//! `example`, `validate` and `convert` as a user runs them.

use crate::support::run_text;

#[test]
fn example_validates_for_both_agreements_and_formats() {
    for agreement in ["ATIGA", "RCEP"] {
        for format in ["xml", "json"] {
            let (code, doc, err) =
                run_text(&["example", "--agreement", agreement, "--format", format, "--from", "KH", "--to", "TH"], b"");
            assert_eq!(code, 0, "{agreement} {format}: {err}");
            let (code, out, err) = run_text(&["validate", "-"], doc.as_bytes());
            assert_eq!((code, out.trim()), (0, "valid"), "{agreement} {format}: {err}");
        }
    }
}
