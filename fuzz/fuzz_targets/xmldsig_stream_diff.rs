//! Differential fuzzing of the streaming fast path against the DOM path: whenever
//! `verify_enveloped_fast` answers (valid, or refused with a code), `verify_enveloped_with`
//! must give exactly that answer; whenever the fast path produces canonical bytes, they are
//! the DOM's. Captured element text must equal what the DOM holds at that path. Seeds: the
//! `xmldsig_verify` corpus (signed documents and attacks).
#![no_main]

use libfuzzer_sys::fuzz_target;
use originlink_xmldsig::testing::{dom_canonical, fast_canonical};
use originlink_xmldsig::{FastVerify, Limits, verify_enveloped_fast, verify_enveloped_with};

const CAC: &str = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2";
const CBC: &str = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2";

fuzz_target!(|data: &[u8]| {
    let limits = Limits { max_bytes: 256 * 1024, ..Limits::default() };
    let paths: [&[(&str, &str)]; 2] = [
        &[(CAC, "CertificateOfOriginApplication"), (CAC, "IssuingCountry"), (CBC, "IdentificationCode")],
        &[(CBC, "IssueDate")],
    ];
    let fast = verify_enveloped_fast(data, &limits, None, &paths);
    let dom = verify_enveloped_with(data, &limits, None, |root| {
        paths.map(|path| {
            let mut node = root;
            for (ns, name) in path {
                let mut it = node.children().filter(|n| n.is_element() && n.has_tag_name((*ns, *name)));
                match (it.next(), it.next()) {
                    (Some(n), None) => node = n,
                    _ => return None,
                }
            }
            if node.children().any(|c| c.is_element()) {
                return None;
            }
            Some(node.children().filter(|c| c.is_text()).filter_map(|c| c.text()).collect::<String>())
        })
    });
    match fast {
        FastVerify::Verified(v, captured) => {
            let Ok((dom_v, dom_captured)) = &dom else { panic!("fast path valid, DOM {dom:?}") };
            assert_eq!(&v, dom_v);
            assert_eq!(captured.as_slice(), dom_captured.as_slice());
        }
        FastVerify::Rejected(e) => assert_eq!(dom.err(), Some(e)),
        FastVerify::Unsure => {}
    }
    if data.len() <= limits.max_bytes
        && let Some(fast) = fast_canonical(data)
    {
        let dom = dom_canonical(data).expect("fast path canonicalized what the DOM refuses");
        assert_eq!(fast, dom);
    }
});
