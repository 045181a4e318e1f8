#!/usr/bin/env bash
# End to end: the xades_sign example signs an AuthTokenRequest with a fresh RSA and EC test seal;
# xmlsec1 (the independent verifier, command from docs/conventions) must accept both, and reject
# them after one byte of the signed content (the NIP) changes.
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
verify() {
  xmlsec1 --verify --enabled-key-data x509 --enabled-reference-uris empty,same-doc \
    --id-attr:Id 'http://uri.etsi.org/01903/v1.3.2#:SignedProperties' \
    --trusted-pem "$1/cert.pem" "$2" >/dev/null 2>&1
}
for key in rsa ec; do
  cargo run -q -p ksef-crypto --example xades_sign -- --key "$key" --nip 5265877635 \
    --challenge 20250604-CR-461EA5B000-537A6BA15D-D7 --out "$dir/$key"
  verify "$dir/$key" "$dir/$key/signed.xml" || { echo "xmlsec1 rejected our $key signature"; exit 1; }
  sed 's|5265877635</Nip>|5265877641</Nip>|' "$dir/$key/signed.xml" > "$dir/$key/tampered.xml"
  if verify "$dir/$key" "$dir/$key/tampered.xml"; then
    echo "xmlsec1 accepted a tampered $key signature"; exit 1
  fi
  echo "xades $key: xmlsec1 accepts ours and rejects the tampered copy"
done
