//! `sign_enveloped`: splice a `Signature` into the document's own bytes, then fill it in.
//!
//! The input bytes outside the inserted element are kept exactly: what the issuer wrote is
//! what gets signed and stored.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use roxmltree::Node;

use crate::c14n::{ExcC14n, canonicalize_document, canonicalize_subtree};
use crate::error::{Error, malformed};
use crate::keys::{ENVELOPED_SIGNATURE, EXC_C14N, SHA256, SigningKey, certificate_key};
use crate::signature::Placement;
use crate::ubl;
use crate::xml::{DSIG_NS, Limits, check_unique_ids, element_qname, is_ds, parse};

/// Signs the whole document with an enveloped signature: one `Reference URI=""` with the
/// enveloped-signature and exclusive C14N transforms, SHA-256, and the key's algorithm
/// (ECDSA-SHA256 or RSA-SHA256). `cert_chain_der[0]` must be the certificate of `key`; it and
/// the rest of the chain go into `X509Data` in that order.
pub fn sign_enveloped(
    xml: &[u8],
    key: &SigningKey,
    cert_chain_der: &[Vec<u8>],
    placement: Placement,
) -> Result<Vec<u8>, Error> {
    let signer = cert_chain_der.first().ok_or(Error::CertificateMissing)?;
    if certificate_key(signer)?.key != key.public_key_bytes() {
        return Err(Error::KeyCertificateMismatch);
    }
    for der in &cert_chain_der[1..] {
        x509_parser::parse_x509_certificate(der)
            .map_err(|e| Error::BadCertificate(format!("chain certificate is not DER X.509: {e}")))?;
    }
    let limits = Limits::default();
    let doc = parse(xml, &limits)?;
    if doc.descendants().any(|n| is_ds(n, "Signature")) {
        return Err(Error::AlreadySigned);
    }
    // Never produce a signature that our own verifier would refuse.
    check_unique_ids(doc.root_element())?;
    // Nor one that libxml2 (xmlsec1) cannot canonicalize: it checks every declaration.
    check_namespace_uris(&doc)?;
    let text = doc.input_text();
    let root = doc.root_element();

    let (wrap_open, wrap_close, splice) = match placement {
        Placement::RootChild => (String::new(), String::new(), as_last_child(root)?),
        Placement::UblExtension => {
            let ext = root.first_element_child().filter(|n| {
                n.tag_name().namespace() == Some(ubl::EXT_NS) && n.tag_name().name() == "UBLExtensions"
            });
            let inner_open = format!(
                "<ext:UBLExtension><ext:ExtensionContent><sig:UBLDocumentSignatures xmlns:sig=\"{}\" \
                 xmlns:sac=\"{}\"><sac:SignatureInformation>",
                ubl::SIG_NS,
                ubl::SAC_NS
            );
            let inner_close = "</sac:SignatureInformation></sig:UBLDocumentSignatures></ext:ExtensionContent></ext:UBLExtension>";
            match ext {
                Some(ext) => (
                    inner_open.replacen(
                        "<ext:UBLExtension>",
                        &format!("<ext:UBLExtension xmlns:ext=\"{}\">", ubl::EXT_NS),
                        1,
                    ),
                    inner_close.to_owned(),
                    as_last_child(ext)?,
                ),
                None => (
                    format!("<ext:UBLExtensions xmlns:ext=\"{}\">{inner_open}", ubl::EXT_NS),
                    format!("{inner_close}</ext:UBLExtensions>"),
                    as_first_child(root)?,
                ),
            }
        }
    };
    let assemble = |signature: &str| -> String {
        let mut s = String::with_capacity(text.len() + signature.len() + 512);
        s.push_str(&text[..splice.at]);
        s.push_str(splice.before);
        s.push_str(&wrap_open);
        s.push_str(signature);
        s.push_str(&wrap_close);
        s.push_str(&splice.after);
        s.push_str(&text[splice.resume..]);
        s
    };

    let certs: Vec<String> = cert_chain_der.iter().map(|c| STANDARD.encode(c)).collect();
    let alg = key.algorithm().uri();

    // 1. The document with an empty signature gives the digest (the Signature itself is
    //    removed by the enveloped-signature transform, the UBL wrappers are signed).
    let draft = assemble(&signature_xml(alg, "", "", &certs));
    let draft_doc = parse(draft.as_bytes(), &Limits { max_bytes: usize::MAX, ..limits })?;
    let sig_node = draft_doc
        .descendants()
        .find(|n| is_ds(*n, "Signature"))
        .ok_or_else(|| malformed("the Signature could not be inserted"))?;
    let mut canonical = Vec::with_capacity(draft.len());
    let opts = ExcC14n { with_comments: false, inclusive_prefixes: Vec::new(), exclude: Some(sig_node.id()) };
    canonicalize_document(&draft_doc, &opts, &mut canonical)?;
    let digest = STANDARD.encode(ring::digest::digest(&ring::digest::SHA256, &canonical));

    // 2. SignedInfo only depends on itself: `ds` is declared on our Signature element and
    //    exclusive C14N renders nothing from further out.
    let unsigned = signature_xml(alg, &digest, "", &certs);
    let sig_doc = parse(unsigned.as_bytes(), &Limits { max_bytes: usize::MAX, ..limits })?;
    let signed_info = sig_doc
        .descendants()
        .find(|n| is_ds(*n, "SignedInfo"))
        .ok_or_else(|| malformed("SignedInfo missing from our own template"))?;
    let mut si = Vec::with_capacity(1024);
    canonicalize_subtree(signed_info, &ExcC14n::default(), &mut si)?;
    let value = STANDARD.encode(key.sign(&si)?);

    Ok(assemble(&signature_xml(alg, &digest, &value, &certs)).into_bytes())
}

/// Every namespace URI declared in the document, used or not, must be one that both our C14N
/// and libxml2's accept ([`crate::nsuri::check`]).
fn check_namespace_uris(doc: &roxmltree::Document) -> Result<(), Error> {
    let mut seen = std::collections::HashSet::new();
    for n in doc.descendants().filter(Node::is_element) {
        for ns in n.namespaces() {
            if seen.insert(ns.uri()) {
                crate::nsuri::check(ns.uri())
                    .map_err(|reason| Error::NamespaceUriInvalid { uri: ns.uri().to_owned(), reason })?;
            }
        }
    }
    Ok(())
}

fn signature_xml(alg: &str, digest: &str, value: &str, certs: &[String]) -> String {
    let mut s = format!(
        "<ds:Signature xmlns:ds=\"{DSIG_NS}\"><ds:SignedInfo>\
         <ds:CanonicalizationMethod Algorithm=\"{EXC_C14N}\"/>\
         <ds:SignatureMethod Algorithm=\"{alg}\"/>\
         <ds:Reference URI=\"\"><ds:Transforms>\
         <ds:Transform Algorithm=\"{ENVELOPED_SIGNATURE}\"/>\
         <ds:Transform Algorithm=\"{EXC_C14N}\"/></ds:Transforms>\
         <ds:DigestMethod Algorithm=\"{SHA256}\"/>\
         <ds:DigestValue>{digest}</ds:DigestValue></ds:Reference></ds:SignedInfo>\
         <ds:SignatureValue>{value}</ds:SignatureValue><ds:KeyInfo><ds:X509Data>"
    );
    for c in certs {
        s.push_str("<ds:X509Certificate>");
        s.push_str(c);
        s.push_str("</ds:X509Certificate>");
    }
    s.push_str("</ds:X509Data></ds:KeyInfo></ds:Signature>");
    s
}

/// How to splice new content into the source: keep `text[..at]`, write `before`, the
/// content, `after`, then resume at `text[resume..]`.
struct Splice {
    at: usize,
    before: &'static str,
    after: String,
    resume: usize,
}

/// Splice point for content as the last child of `node`.
fn as_last_child(node: Node) -> Result<Splice, Error> {
    let text = node.document().input_text();
    let range = node.range();
    let source = &text[range.clone()];
    if source.ends_with("/>") {
        // `<e a="1"/>` becomes `<e a="1">…</e>`.
        return Ok(Splice {
            at: range.end - 2,
            before: ">",
            after: format!("</{}>", element_qname(node)),
            resume: range.end,
        });
    }
    let end_tag = source.rfind("</").ok_or_else(|| malformed("element without end tag"))?;
    let at = range.start + end_tag;
    Ok(Splice { at, before: "", after: String::new(), resume: at })
}

/// Splice point for content as the first child of `node`.
fn as_first_child(node: Node) -> Result<Splice, Error> {
    match node.first_child() {
        Some(child) => {
            let at = child.range().start;
            Ok(Splice { at, before: "", after: String::new(), resume: at })
        }
        None => as_last_child(node),
    }
}
