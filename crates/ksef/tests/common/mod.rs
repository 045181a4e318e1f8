//! Helpers shared by the SDK's permission test files: an in-process simulator and owner logins.

#[path = "../../../ksef-sim/tests/checked/mod.rs"]
pub mod checked;
use checked::StartChecked;

use ksef::model::{ContextIdentifier, Nip};
use ksef::{AuthenticatedClient, KsefClient, TestIdentity};

/// A simulator without rate limits and a client that polls every 10 ms.
pub async fn sim() -> (checked::CheckedSim, KsefClient) {
    let sim = ksef_sim::Simulator::builder()
        .rate_limits(false)
        .start_checked()
        .await
        .unwrap();
    let client = KsefClient::builder_for_url(&sim.base_url())
        .poll_options(ksef::PollOptions {
            initial_delay: std::time::Duration::from_millis(10),
            ..Default::default()
        })
        .build()
        .unwrap();
    (sim, client)
}

/// Parses a NIP the test knows is valid.
pub fn nip(s: &str) -> Nip {
    s.parse().unwrap()
}

/// The company's own seal (it owns its NIP context).
pub async fn owner(client: &KsefClient, of: &str) -> AuthenticatedClient {
    client
        .auth()
        .test_certificate(
            &TestIdentity::Seal {
                name: "Firma Testowa".into(),
                nip: of.into(),
            },
            ContextIdentifier::Nip(nip(of)),
        )
        .await
        .unwrap()
}
