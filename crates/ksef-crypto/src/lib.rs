//! KSeF 2.0 cryptography (crate docs are replaced by README.md once it exists).

pub mod c14n;
pub mod cert;
pub mod csr;
pub mod encryption;
pub mod hash;
pub mod keys;
pub mod public_key;
pub mod qr;
pub mod signer;
pub mod xades;
