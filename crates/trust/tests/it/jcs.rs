//! RFC 8785 test vectors.

use originlink_trust::jcs;

use crate::support::repo;

#[test]
fn rfc8785_vectors_pass() {
    let dir = repo().join("testdata/jcs-vectors");
    let mut n = 0;
    for e in std::fs::read_dir(dir.join("input")).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_name().unwrap().to_owned();
        let input = std::fs::read(&path).unwrap();
        let expect = std::fs::read(dir.join("output").join(&name)).unwrap();
        let got = jcs::canonicalize(&input).unwrap();
        assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&expect), "{name:?}");
        // outhex holds the same bytes in hex: a second, independent statement of the result.
        let hex = std::fs::read_to_string(dir.join("outhex").join(&name).with_extension("txt")).unwrap();
        let bytes: Vec<u8> = hex.split_whitespace().map(|h| u8::from_str_radix(h, 16).unwrap()).collect();
        assert_eq!(got, bytes, "{name:?} (outhex)");
        n += 1;
    }
    assert!(n >= 6, "only {n} vectors found");
}

#[test]
fn es6_number_edge_cases() {
    for (f, s) in [
        (1e21, "1e+21"),
        (1e-7, "1e-7"),
        (0.000001, "0.000001"),
        (9.999999999999997e-7, "9.999999999999997e-7"),
        (9007199254740994.0, "9007199254740994"),
        (-0.0, "0"),
        (f64::MAX, "1.7976931348623157e+308"),
        (5e-324, "5e-324"),
        (333333333.3333333, "333333333.3333333"),
    ] {
        assert_eq!(jcs::es6_number(f), s, "{f:e}");
    }
}

#[test]
fn duplicate_names_and_trailing_garbage_are_refused() {
    assert!(jcs::canonicalize(br#"{"a":1,"b":{"c":1,"c":2}}"#).is_err());
    assert!(jcs::canonicalize(br#"[1] [2]"#).is_err());
    assert!(jcs::canonicalize(br#"[1e400]"#).is_err());
}
