#!/usr/bin/env python3
"""Validates JSON files against the edi3 CertificateOfOrigin JSON schema (draft-07), in one process.

Usage: edi3_validate.py SCHEMA CODES FILE_OR_DIR...

CODES is the local stand-in for https://edi3.org/shared/openapi/ISO/codes.json (the schema's one
external $ref). A directory argument means every *.json file in it. Formats `uri` and `date-time`
are checked with strict built-in checkers, so the result does not depend on optional packages.
Prints one line per error ("FILE: POINTER: MESSAGE") and a summary line; exits 1 if any file is
invalid, 2 on a usage error.
"""

import json
import os
import re
import sys

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

CODES_URL = "https://edi3.org/shared/openapi/ISO/codes.json"

# RFC 3986 absolute URI: scheme ":" then URI characters, each "%" followed by two hex digits.
URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*$")
# RFC 3339 date-time.
DATE_TIME = re.compile(
    r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[Tt]([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?"
    r"([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)$"
)


def main(argv):
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as f:
        schema = json.load(f)
    with open(argv[2], encoding="utf-8") as f:
        codes = json.load(f)
    registry = Registry().with_resource(CODES_URL, Resource.from_contents(codes, default_specification=DRAFT7))
    checker = jsonschema.FormatChecker(formats=())
    checker.checks("uri")(lambda s: not isinstance(s, str) or bool(URI.match(s)))
    checker.checks("date-time")(lambda s: not isinstance(s, str) or bool(DATE_TIME.match(s)))
    jsonschema.Draft7Validator.check_schema(schema)
    validator = jsonschema.Draft7Validator(schema, registry=registry, format_checker=checker)

    files = []
    for arg in argv[3:]:
        if os.path.isdir(arg):
            files += sorted(os.path.join(arg, n) for n in os.listdir(arg) if n.endswith(".json"))
        else:
            files.append(arg)
    bad = 0
    for path in files:
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
        except (OSError, ValueError) as e:
            bad += 1
            print(f"{path}: /: not readable JSON: {e}")
            continue
        errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
        if errors:
            bad += 1
        for e in errors:
            pointer = "/" + "/".join(str(p) for p in e.absolute_path)
            print(f"{path}: {pointer}: {e.message}")
    print(f"edi3 schema: {len(files) - bad} valid, {bad} invalid, of {len(files)} files")
    return 1 if bad or not files else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
