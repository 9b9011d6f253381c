//! `verify_enveloped`: the structural policy first, then the digest, then the signature.

use std::ops::Not as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use roxmltree::{Node, NodeType};

use crate::c14n::{ExcC14n, canonicalize_document, canonicalize_subtree, parse_prefix_list};
use crate::error::{Error, malformed, not_allowed, wrapping};
use crate::keys::{
    CertKey, ENVELOPED_SIGNATURE, EXC_C14N, KeyCache, SHA256, SignatureAlgorithm,
    certificate_key_or_unsupported, verify_with,
};
use crate::signature::{Placement, Verified};
use crate::stream::FastVerify;
use crate::ubl;
use crate::xml::{EXC_C14N_NS, Limits, check_unique_ids, id_values, is_ds, parse};

/// Most certificates accepted in `X509Data` (signer plus chain).
const MAX_CERTIFICATES: usize = 16;

/// Verifies an enveloped XML signature over the whole document under the structural policy
/// (see `docs/security.md`, "XML signature verification policy"):
///
/// - exactly one `ds:Signature`, a child of the root or at the UBL extension place;
/// - exactly one `Reference`, URI `""` or `#` + the root's ID; no duplicate IDs anywhere; no `Object`;
/// - transforms exactly enveloped-signature then exclusive C14N; SignedInfo canonicalized with
///   exclusive C14N; digest SHA-256; signature ECDSA-SHA256 (P-256) or RSA-SHA256;
/// - no comments or processing instructions inside the `Signature`;
/// - the digest of the canonical document matches, then the `SignatureValue` verifies with the
///   key of a certificate in `X509Data`.
///
/// Documents in the shape our signer writes are checked by the one-pass streaming verifier
/// ([`crate::verify_enveloped_fast`]); whatever it is not sure about goes through the DOM path
/// ([`verify_enveloped_with`], the reference implementation). Both give the same answer.
pub fn verify_enveloped(xml: &[u8], limits: &Limits) -> Result<Verified, Error> {
    match crate::stream::verify_enveloped_fast(xml, limits, None, &[]) {
        FastVerify::Verified(verified, _) => Ok(verified),
        FastVerify::Rejected(e) => Err(e),
        FastVerify::Unsure => verify_enveloped_with(xml, limits, None, |_| ()).map(|(verified, ())| verified),
    }
}

/// [`verify_enveloped`] over a roxmltree DOM (the reference implementation the streaming
/// fast path is tested against), then `read` over the root element of the DOM it verified, so
/// the caller can take what it needs from the signed document without parsing it again.
///
/// `read` runs only after the whole verification succeeded (structure, digest, signature), on
/// the very tree that was canonicalized and digested: what it reads is what was signed.
///
/// With `keys`, the public keys of the certificates in `X509Data` are taken from (and added
/// to) that cache, keyed by the SHA-256 of each certificate's DER, instead of being parsed
/// out of the certificates on every call. The result is the same either way.
pub fn verify_enveloped_with<T>(
    xml: &[u8],
    limits: &Limits,
    keys: Option<&KeyCache>,
    read: impl FnOnce(Node<'_, '_>) -> T,
) -> Result<(Verified, T), Error> {
    let doc = parse(xml, limits)?;
    let root = doc.root_element();

    let mut signatures = doc.descendants().filter(|n| is_ds(*n, "Signature"));
    let sig = signatures.next().ok_or(Error::SignatureMissing)?;
    if signatures.next().is_some() {
        return Err(wrapping("more than one Signature in the document"));
    }
    let placement = placement_of(sig, root)?;
    check_unique_ids(root)?;

    if sig.descendants().any(|n| matches!(n.node_type(), NodeType::Comment | NodeType::PI)) {
        return Err(malformed("comments and processing instructions are not allowed inside Signature"));
    }

    let parts = SignatureParts::read(sig, root, keys)?;
    let subtree = parts.whole_document.not().then_some(root);

    let opts = ExcC14n {
        with_comments: false,
        inclusive_prefixes: parts.reference_prefixes.clone(),
        exclude: Some(sig.id()),
    };
    let mut canonical = Vec::with_capacity(xml.len());
    match subtree {
        None => canonicalize_document(&doc, &opts, &mut canonical)?,
        Some(apex) => canonicalize_subtree(apex, &opts, &mut canonical)?,
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, &canonical);
    if digest.as_ref() != parts.digest_value.as_slice() {
        return Err(Error::Tampered);
    }

    let si_opts = ExcC14n {
        with_comments: false,
        inclusive_prefixes: parts.signed_info_prefixes.clone(),
        exclude: None,
    };
    let mut signed_info = Vec::with_capacity(1024);
    canonicalize_subtree(parts.signed_info, &si_opts, &mut signed_info)?;

    let signer = parts.certificates.iter().position(|(_, key)| {
        key.as_ref().is_some_and(|key| verify_with(key, parts.algorithm, &signed_info, &parts.signature))
    });
    let Some(signer) = signer else {
        return Err(Error::BadSignature);
    };
    let mut certificates: Vec<Vec<u8>> = parts.certificates.into_iter().map(|(der, _)| der).collect();
    let signer_certificate_der = certificates.remove(signer);
    let verified = Verified {
        signer_certificate_der,
        other_certificates_der: certificates,
        algorithm: parts.algorithm,
        root_namespace: root.tag_name().namespace().map(str::to_owned),
        root_name: root.tag_name().name().to_owned(),
        placement,
    };
    Ok((verified, read(root)))
}

fn placement_of(sig: Node, root: Node) -> Result<Placement, Error> {
    if sig == root {
        return Err(wrapping("the root element is the Signature (enveloping signatures are not accepted)"));
    }
    let parent = sig.parent_element();
    if parent == Some(root) {
        return Ok(Placement::RootChild);
    }
    // ext:UBLExtensions/ext:UBLExtension/ext:ExtensionContent/sig:UBLDocumentSignatures/sac:SignatureInformation
    let expected = [
        (ubl::SAC_NS, "SignatureInformation"),
        (ubl::SIG_NS, "UBLDocumentSignatures"),
        (ubl::EXT_NS, "ExtensionContent"),
        (ubl::EXT_NS, "UBLExtension"),
        (ubl::EXT_NS, "UBLExtensions"),
    ];
    let mut node = sig;
    for (ns, name) in expected {
        match node.parent_element() {
            Some(p) if p.tag_name().namespace() == Some(ns) && p.tag_name().name() == name => node = p,
            _ => {
                return Err(wrapping(
                    "the Signature is neither a child of the root nor in the UBL extension",
                ));
            }
        }
    }
    if node.parent_element() != Some(root) {
        return Err(wrapping("the UBL extension holding the Signature is not a child of the root"));
    }
    Ok(Placement::UblExtension)
}

/// The parts of a `Signature` that passed the structural and algorithm checks.
struct SignatureParts<'a, 'i> {
    signed_info: Node<'a, 'i>,
    signed_info_prefixes: Vec<Option<&'a str>>,
    algorithm: SignatureAlgorithm,
    /// `URI=""` (whole document) rather than `#id-of-root` (root element only).
    whole_document: bool,
    reference_prefixes: Vec<Option<&'a str>>,
    digest_value: Vec<u8>,
    signature: Vec<u8>,
    /// Each certificate with its public key, if it is of a type we verify with.
    certificates: Vec<(Vec<u8>, Option<CertKey>)>,
}

impl<'a, 'i> SignatureParts<'a, 'i> {
    fn read(sig: Node<'a, 'i>, root: Node, keys: Option<&KeyCache>) -> Result<Self, Error> {
        let children = element_children(sig)?;
        let mut signed_info = None;
        let mut signature_value = None;
        let mut key_info = None;
        for (i, child) in children.iter().enumerate() {
            match (i, ds_name(*child)) {
                (0, Some("SignedInfo")) => signed_info = Some(*child),
                (1, Some("SignatureValue")) => signature_value = Some(*child),
                (2, Some("KeyInfo")) => key_info = Some(*child),
                (_, Some("Object")) => {
                    return Err(wrapping("Object elements are not accepted inside Signature"));
                }
                _ => return Err(malformed(format!("unexpected <{}> in Signature", child.tag_name().name()))),
            }
        }
        let signed_info = signed_info.ok_or_else(|| malformed("Signature has no SignedInfo"))?;
        let signature_value = signature_value.ok_or_else(|| malformed("Signature has no SignatureValue"))?;

        let si_children = element_children(signed_info)?;
        let references = si_children.iter().filter(|n| is_ds(**n, "Reference")).count();
        if references != 1 {
            return Err(wrapping(format!("SignedInfo has {references} References; exactly one is allowed")));
        }
        let [c14n, method, reference] = si_children.as_slice() else {
            return Err(malformed("SignedInfo must hold CanonicalizationMethod, SignatureMethod, Reference"));
        };
        if !is_ds(*c14n, "CanonicalizationMethod") || !is_ds(*method, "SignatureMethod") {
            return Err(malformed("SignedInfo must hold CanonicalizationMethod, SignatureMethod, Reference"));
        }
        let signed_info_prefixes = exc_c14n_prefixes(*c14n, "CanonicalizationMethod")?;

        let method_uri = algorithm_attr(*method)?;
        let algorithm = SignatureAlgorithm::from_uri(method_uri)
            .ok_or_else(|| not_allowed(format!("SignatureMethod {method_uri}")))?;
        if !element_children(*method)?.is_empty() {
            return Err(malformed("SignatureMethod must be empty"));
        }

        let reference_uri = reference
            .attribute("URI")
            .ok_or_else(|| wrapping("Reference without URI: the signed data would be implicit"))?;
        // The signed element must be the document root.
        let whole_document = reference_uri.is_empty();
        if !whole_document {
            let id =
                reference_uri.strip_prefix('#').filter(|id| !id.is_empty() && !id.starts_with("xpointer("));
            if !id.is_some_and(|id| id_values(root).any(|v| v == id)) {
                return Err(wrapping(format!(
                    "Reference URI {reference_uri:?} does not point at the document root"
                )));
            }
        }
        let ref_children = element_children(*reference)?;
        let [transforms, digest_method, digest_value] = ref_children.as_slice() else {
            return Err(malformed("Reference must hold Transforms, DigestMethod, DigestValue"));
        };
        if !is_ds(*transforms, "Transforms")
            || !is_ds(*digest_method, "DigestMethod")
            || !is_ds(*digest_value, "DigestValue")
        {
            return Err(malformed("Reference must hold Transforms, DigestMethod, DigestValue"));
        }
        let reference_prefixes = check_transforms(*transforms)?;
        let digest_uri = algorithm_attr(*digest_method)?;
        if digest_uri != SHA256 {
            return Err(not_allowed(format!("DigestMethod {digest_uri}")));
        }
        let digest_value = base64_content(*digest_value)?;
        if digest_value.len() != 32 {
            return Err(malformed("DigestValue is not 32 bytes"));
        }
        let signature = base64_content(signature_value)?;

        let mut certificates = Vec::new();
        if let Some(key_info) = key_info {
            for x509 in element_children(key_info)?.into_iter().filter(|n| is_ds(*n, "X509Data")) {
                for cert in element_children(x509)?.into_iter().filter(|n| is_ds(*n, "X509Certificate")) {
                    let der = base64_content(cert)?;
                    // A key we cannot verify with (say a P-384 CA) may still be in the chain.
                    let key = match keys {
                        Some(cache) => cache.key(&der)?,
                        None => certificate_key_or_unsupported(&der)?,
                    };
                    certificates.push((der, key));
                }
            }
        }
        if certificates.is_empty() {
            return Err(Error::CertificateMissing);
        }
        // Each one may be tried as the signer: keep that work bounded.
        if certificates.len() > MAX_CERTIFICATES {
            return Err(malformed(format!("more than {MAX_CERTIFICATES} certificates in X509Data")));
        }
        Ok(SignatureParts {
            signed_info,
            signed_info_prefixes,
            algorithm,
            whole_document,
            reference_prefixes,
            digest_value,
            signature,
            certificates,
        })
    }
}

fn ds_name<'i>(node: Node<'_, 'i>) -> Option<&'i str> {
    (node.tag_name().namespace() == Some(crate::xml::DSIG_NS)).then(|| node.tag_name().name())
}

/// Element children; any non-whitespace text between them is malformed.
fn element_children<'a, 'i>(node: Node<'a, 'i>) -> Result<Vec<Node<'a, 'i>>, Error> {
    let mut out = Vec::new();
    for child in node.children() {
        if child.is_element() {
            out.push(child);
        } else if child.is_text() && !child.text().unwrap_or("").trim_ascii().is_empty() {
            return Err(malformed(format!("unexpected text in <{}>", node.tag_name().name())));
        }
    }
    Ok(out)
}

fn algorithm_attr<'a>(node: Node<'a, '_>) -> Result<&'a str, Error> {
    node.attribute("Algorithm")
        .ok_or_else(|| malformed(format!("<{}> without Algorithm", node.tag_name().name())))
}

/// Checks an exclusive C14N method element and returns its `InclusiveNamespaces PrefixList`.
fn exc_c14n_prefixes<'a>(node: Node<'a, '_>, what: &str) -> Result<Vec<Option<&'a str>>, Error> {
    let uri = algorithm_attr(node)?;
    if uri != EXC_C14N {
        return Err(not_allowed(format!("{what} {uri}")));
    }
    let children = element_children(node)?;
    match children.as_slice() {
        [] => Ok(Vec::new()),
        [inc]
            if inc.tag_name().namespace() == Some(EXC_C14N_NS)
                && inc.tag_name().name() == "InclusiveNamespaces" =>
        {
            Ok(parse_prefix_list(inc.attribute("PrefixList").unwrap_or("")))
        }
        _ => Err(malformed(format!("unexpected content in {what}"))),
    }
}

/// Transforms must be exactly enveloped-signature then exclusive C14N.
fn check_transforms<'a>(transforms: Node<'a, '_>) -> Result<Vec<Option<&'a str>>, Error> {
    let list = element_children(transforms)?;
    for t in &list {
        if !is_ds(*t, "Transform") {
            return Err(malformed("Transforms may only hold Transform elements"));
        }
        let uri = algorithm_attr(*t)?;
        if uri != ENVELOPED_SIGNATURE && uri != EXC_C14N {
            return Err(not_allowed(format!("Transform {uri}")));
        }
    }
    match list.as_slice() {
        [env, exc] if algorithm_attr(*env)? == ENVELOPED_SIGNATURE => {
            if !element_children(*env)?.is_empty() {
                return Err(malformed("the enveloped-signature Transform must be empty"));
            }
            exc_c14n_prefixes(*exc, "Transform")
        }
        _ => Err(not_allowed("Transforms must be exactly enveloped-signature then exclusive C14N")),
    }
}

/// The base64 text content of an element (whitespace ignored), which must hold nothing else.
fn base64_content(node: Node) -> Result<Vec<u8>, Error> {
    let mut text = Vec::new();
    for child in node.children() {
        match child.text() {
            Some(t) if child.is_text() => text.extend(t.bytes().filter(|b| !b.is_ascii_whitespace())),
            _ => return Err(malformed(format!("<{}> must hold only base64 text", node.tag_name().name()))),
        }
    }
    STANDARD.decode(&text).map_err(|e| malformed(format!("bad base64 in <{}>: {e}", node.tag_name().name())))
}
