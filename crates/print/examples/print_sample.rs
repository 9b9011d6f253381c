//! Prints a sample certificate: `cargo run -p originlink-print --example print_sample -- [atiga|rcep] [items] [out.pdf]`.

use originlink_model::{Agreement, CountryCode, NaiveDate, sample::sample};
use originlink_print::{PrintOptions, render};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let agreement = Agreement::parse(args.get(1).map_or("ATIGA", String::as_str)).expect("ATIGA or RCEP");
    let items: usize = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(3);
    let out = args.get(3).cloned().unwrap_or_else(|| "certificate.pdf".to_owned());
    let (from, to) = match agreement {
        Agreement::Rcep => ("CN", "JP"),
        _ => ("KH", "TH"),
    };
    let date = NaiveDate::from_ymd_opt(2026, 3, 2).expect("valid date");
    let cert = sample(
        agreement,
        CountryCode::parse(from).expect("KH"),
        CountryCode::parse(to).expect("TH"),
        date,
        items,
        1,
    );
    let number = cert.number.as_ref().map(|n| n.to_string()).unwrap_or_default();
    let opts = PrintOptions {
        verify_url: format!("http://127.0.0.1:8443/verify?n={number}&c=7K3M9-QX2VD"),
        check_code: "7K3M9-QX2VD".to_owned(),
        sha256_hex: "9f2c1e0b7a4d3c2b1a0f9e8d7c6b5a4938271605f4e3d2c1b0a99887766554433".to_owned(),
        copy: None,
    };
    match render(&cert, &opts) {
        Ok(pdf) => std::fs::write(&out, pdf).expect("writable output"),
        Err(e) => {
            eprintln!("{}: {e}", e.code());
            std::process::exit(1);
        }
    }
}
