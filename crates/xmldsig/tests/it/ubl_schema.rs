//! A signed UBL certificate of origin is still valid against the UBL 2.4 schema.

use originlink_xmldsig::Placement;

use crate::common::{ec_key, rsa_key, run, s, scratch, testdata, ubl_example, write};

fn schema_valid(name: &str, xml: &[u8]) -> Result<(), String> {
    let dir = scratch("ubl-schema");
    let file = write(&dir, name, xml);
    let xsd = testdata().join("ubl-2.4/maindoc/UBL-CertificateOfOrigin-2.4.xsd");
    let out = run("xmllint", &["--noout", "--nonet", "--schema", s(&xsd), s(&file)]);
    if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).into_owned()) }
}

#[test]
fn ecdsa_signed_ubl_validates_against_the_schema() {
    let signed = ec_key().sign(&ubl_example(), Placement::UblExtension);
    schema_valid("ecdsa.xml", &signed).unwrap();
}

#[test]
fn rsa_signed_ubl_validates_against_the_schema() {
    let signed = rsa_key().sign(&ubl_example(), Placement::UblExtension);
    schema_valid("rsa.xml", &signed).unwrap();
}

/// Control: the schema check does catch a misplaced signature.
#[test]
fn root_child_placement_is_not_schema_valid_for_ubl() {
    let signed = ec_key().sign(&ubl_example(), Placement::RootChild);
    let err = schema_valid("misplaced.xml", &signed).unwrap_err();
    assert!(err.contains("Signature"), "{err}");
}
