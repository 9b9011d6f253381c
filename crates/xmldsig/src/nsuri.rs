//! Which namespace URIs we sign: those every canonicalizer gives one canonical form.
//!
//! libxml2's C14N (xmllint, xmlsec1, and everything built on them: lxml, signxml) fails on a
//! document that declares, anywhere and whether used or not, a namespace whose URI is not an
//! absolute RFC 3986 URI: a relative reference (`urn` is fine, `ns/1` is not), a space,
//! non-ASCII (an IRI), a bad `%` escape, `|`, `{`, … . C14N 1.0 itself requires
//! implementations to fail on relative namespace URIs. Our canonicalizer also refuses URIs
//! holding `&`, `<`, `"`, tab, CR or LF (libxml2 writes them unescaped, the specification
//! escapes them). [`check`] is the conservative union: an absolute URI by RFC 3986's grammar,
//! ASCII, none of those characters. Tested against `xmllint --exc-c14n`.

/// `Ok` when a namespace URI can be signed; otherwise why not. An empty URI (`xmlns=""`,
/// undeclaring the default namespace) is fine.
pub(crate) fn check(uri: &str) -> Result<(), String> {
    if uri.is_empty() {
        return Ok(());
    }
    if let Some(c) = uri.chars().find(|c| !c.is_ascii()) {
        return Err(format!("{c:?} is not ASCII (an IRI, not a URI; percent-encode it)"));
    }
    let b = uri.as_bytes();
    if let Some(c) = b.iter().find(|c| matches!(c, b'&' | b'<' | b'"' | b'\t' | b'\r' | b'\n')) {
        return Err(format!("{:?}: C14N implementations disagree on how to write it", *c as char));
    }
    if let Some(c) = b.iter().find(|c| c.is_ascii_whitespace() || c.is_ascii_control()) {
        return Err(format!("{:?} is not allowed in a URI", *c as char));
    }
    // scheme ":"
    let colon = b.iter().position(|&c| c == b':');
    let scheme_ok = |s: &[u8]| {
        s.first().is_some_and(u8::is_ascii_alphabetic)
            && s.iter().all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
    };
    let Some(colon) = colon.filter(|&n| scheme_ok(&b[..n])) else {
        return Err("relative: it has no scheme (such as urn: or http:), and C14N refuses \
                    relative namespace URIs"
            .into());
    };
    let rest = &b[colon + 1..];
    // hier-part, then "?" query, then "#" fragment.
    let (hier, after) = split_at_any(rest, b"?#");
    if let Some(auth_and_path) = hier.strip_prefix(b"//") {
        let (authority, path) = split_at_any(auth_and_path, b"/");
        check_authority(authority)?;
        check_chars(path, b"/", "path")?;
    } else {
        check_chars(hier, b"/", "path")?;
    }
    let (query, fragment) = match after.first() {
        Some(b'?') => split_at_any(&after[1..], b"#"),
        _ => (&after[..0], after),
    };
    check_chars(query, b"/?", "query")?;
    if let Some(f) = fragment.strip_prefix(b"#") {
        check_chars(f, b"/?", "fragment")?;
    }
    Ok(())
}

/// `(before, from)`: `s` split before the first byte in `stops` (`from` empty if none).
fn split_at_any<'a>(s: &'a [u8], stops: &[u8]) -> (&'a [u8], &'a [u8]) {
    let n = s.iter().position(|c| stops.contains(c)).unwrap_or(s.len());
    s.split_at(n)
}

fn unreserved_or_sub_delim(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-._~!$'()*+,;=".contains(&c)
}

/// `pchar` (unreserved, sub-delims, `:`, `@`, percent escapes) and `extra`, nothing else.
fn check_chars(s: &[u8], extra: &[u8], part: &str) -> Result<(), String> {
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if c == b'%' {
            if !(s.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && s.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
            {
                return Err(format!("a '%' in the {part} is not followed by two hex digits"));
            }
            i += 3;
            continue;
        }
        if !(unreserved_or_sub_delim(c) || c == b':' || c == b'@' || extra.contains(&c)) {
            return Err(format!("{:?} is not allowed in the {part} of a URI", c as char));
        }
        i += 1;
    }
    Ok(())
}

/// `[userinfo "@"] host [":" port]`, host a registered name or a bracketed IP literal.
fn check_authority(a: &[u8]) -> Result<(), String> {
    let (userinfo, hostport) = match a.iter().rposition(|&c| c == b'@') {
        Some(n) => (&a[..n], &a[n + 1..]),
        None => (&a[..0], a),
    };
    if userinfo.contains(&b'@') {
        return Err("'@' is not allowed in the user information of a URI".into());
    }
    check_chars(userinfo, b"", "user information")?;
    let (host, port) = if hostport.first() == Some(&b'[') {
        let close = hostport.iter().position(|&c| c == b']').ok_or("an IP literal without ']'")?;
        let inside = &hostport[1..close];
        if !inside.iter().all(|&c| unreserved_or_sub_delim(c) || c == b':') {
            return Err("the IP literal holds characters an IP address cannot".into());
        }
        (&hostport[..0], &hostport[close + 1..])
    } else {
        split_at_any(hostport, b":")
    };
    if host.contains(&b'@') {
        return Err("'@' is not allowed in the host of a URI".into());
    }
    check_chars(host, b"", "host")?;
    match port {
        [] => Ok(()),
        [b':', digits @ ..] if (1..=5).contains(&digits.len()) && digits.iter().all(u8::is_ascii_digit) => {
            Ok(())
        }
        _ => Err("the port is not 1 to 5 digits".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn absolute_uris_pass_the_rest_is_refused() {
        for ok in [
            "",
            "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
            "http://www.w3.org/2000/09/xmldsig#",
            "urn:a%20b",
            "urn:a'b",
            "a+b.c-d:x",
            "urn:",
            "x://a:b@c:1/d;e?f/g?h#i/j?k",
            "http://[::1]:8080/x",
            "mailto:a@b",
            "file:///x",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok:?}");
        }
        for bad in [
            "rel",
            "a/b",
            "../x",
            "#frag",
            "urn:a b",
            "urn:é",
            "http://例え.jp",
            "urn:a%2",
            "urn:a%zz",
            "urn:a|b",
            "urn:a{b}",
            "urn:a^b",
            "urn:a`b",
            "urn:a\\b",
            "urn:a[b]",
            "http://a[b]/",
            "urn:a>b",
            "1a:b",
            "+a:b",
            "a_b:c",
            ":x",
            "urn:a#b#c",
            "http://h:80x/",
            "http://h:/",
            "C:\\foo",
            "x:a?b[c]",
            "urn:a&b",
            "urn:a<b",
            "urn:a\"b",
            "urn:a\tb",
            "urn:a\nb",
        ] {
            assert!(check(bad).is_err(), "{bad:?}");
        }
    }
}
