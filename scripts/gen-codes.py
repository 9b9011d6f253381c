#!/usr/bin/env python3
"""Regenerate crates/model/src/codes_data.rs from Debian's iso-codes package.

    apt-get install iso-codes && python3 scripts/gen-codes.py
"""
import json

d = json.load(open('/usr/share/iso-codes/json/iso_3166-1.json'))['3166-1']
c = json.load(open('/usr/share/iso-codes/json/iso_4217.json'))['4217']
# ISO 4217 minor units; iso-codes does not carry them.
zero = {'BIF', 'CLP', 'DJF', 'GNF', 'ISK', 'JPY', 'KMF', 'KRW', 'PYG', 'RWF', 'UGX', 'UYI', 'VND',
        'VUV', 'XAF', 'XOF', 'XPF'}
three = {'BHD', 'IQD', 'JOD', 'KWD', 'LYD', 'OMR', 'TND'}
four = {'CLF', 'UYW'}
skip = {'XAG', 'XAU', 'XBA', 'XBB', 'XBC', 'XBD', 'XDR', 'XPD', 'XPT', 'XSU', 'XTS', 'XUA', 'XXX'}
out = ["//! ISO 3166-1 alpha-2 country codes and ISO 4217 currency codes with their minor units.",
       "//!",
       "//! Generated once from Debian's `iso-codes` package (`iso_3166-1.json`, `iso_4217.json`);",
       "//! minor units from ISO 4217's published table. Regenerate with `scripts/gen-codes.py`.",
       "", "/// (alpha-2, English short name), sorted by code.",
       "pub(crate) const COUNTRIES: &[(&str, &str)] = &["]
for x in sorted(d, key=lambda x: x['alpha_2']):
    out.append(f"    ({json.dumps(x['alpha_2'])}, {json.dumps(x.get('common_name', x['name']), ensure_ascii=False)}),")
out.append("];\n\n/// (alpha-3, minor units), sorted by code. Precious metals and testing codes are left out.")
out.append("pub(crate) const CURRENCIES: &[(&str, u8)] = &[")
for x in sorted(c, key=lambda x: x['alpha_3']):
    a = x['alpha_3']
    if a in skip:
        continue
    mu = 0 if a in zero else 3 if a in three else 4 if a in four else 2
    out.append(f'    ("{a}", {mu}),')
out.append("];\n")
open('crates/model/src/codes_data.rs', 'w').write("\n".join(out))
