//! Minting identifiers (reference numbers, KSeF numbers, trace ids) and formatting times.

use ksef_model::ids::{KsefNumber, Nip, ReferenceNumber, ReferenceType};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// RFC 3339 with offset, as KSeF writes `date-time` values.
pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// A small deterministic generator (SplitMix64): seeded from `--seed` for reproducible runs, or
/// from the OS otherwise. Not for secrets (those use the OS generator directly).
#[derive(Debug, Clone)]
pub(crate) struct IdRng(u64);

impl IdRng {
    pub fn new(seed: Option<u64>) -> Self {
        IdRng(seed.unwrap_or_else(|| {
            let mut b = [0u8; 8];
            // A failing OS generator only makes ids less random, never wrong.
            let _ = getrandom::fill(&mut b);
            u64::from_le_bytes(b)
        }))
    }

    /// The generator's position (persisted under `--state-dir` so ids are never reused).
    pub fn position(&self) -> u64 {
        self.0
    }

    /// A generator continuing from `position`.
    pub fn at(position: u64) -> Self {
        IdRng(position)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }

    /// A reference number `YYYYMMDD-TT-HHHHHHHHHH-HHHHHHHHHH-HH` of type `kind`.
    pub fn reference(&mut self, now: OffsetDateTime, kind: ReferenceType) -> String {
        let mut hex = [0u8; 11];
        self.fill(&mut hex);
        match ReferenceNumber::from_parts(now.date(), &kind, hex) {
            Ok(r) => r.as_str().to_owned(),
            // from_parts only fails for an invalid type code; ours are all valid.
            Err(_) => format!("{}-{}-0000000000-0000000000-00", ymd(now), kind.code()),
        }
    }

    /// A KSeF number for `seller` accepted on `now`'s date, with a valid CRC-8.
    pub fn ksef_number(&mut self, seller: &Nip, now: OffsetDateTime) -> Option<String> {
        let mut tech = [0u8; 6];
        self.fill(&mut tech);
        KsefNumber::from_technical_bytes(seller, now.date(), tech)
            .ok()
            .map(|k| k.as_str().to_owned())
    }

    /// 32 lowercase hex characters (trace ids, download tokens).
    pub fn hex32(&mut self) -> String {
        format!("{:016x}{:016x}", self.next_u64(), self.next_u64())
    }
}

fn ymd(t: OffsetDateTime) -> String {
    format!("{:04}{:02}{:02}", t.year(), t.month() as u8, t.day())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_ids_parse() {
        let mut rng = IdRng::new(Some(7));
        let now = OffsetDateTime::now_utc();
        let r = rng.reference(now, ReferenceType::Challenge);
        assert_eq!(r.len(), 36);
        let parsed: ReferenceNumber = r.parse().unwrap();
        assert_eq!(parsed.type_code(), ReferenceType::Challenge);
        let nip: Nip = "5265877635".parse().unwrap();
        let k = rng.ksef_number(&nip, now).unwrap();
        assert!(k.parse::<KsefNumber>().is_ok(), "{k}");
        // deterministic with a seed
        assert_eq!(
            IdRng::new(Some(1)).reference(now, ReferenceType::Invoice),
            IdRng::new(Some(1)).reference(now, ReferenceType::Invoice)
        );
    }
}
