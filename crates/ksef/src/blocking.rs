//! The SDK without an async runtime of your own (feature `blocking`).
//!
//! One [`Runtime`] owns a small tokio runtime and runs any of the SDK's futures to completion
//! with [`Runtime::block_on`]; [`Runtime::iter`] turns the auto-paging streams into iterators.
//! Nothing else is mirrored: every call is the async API's own, so the blocking form can never
//! drift from it (no hand-written copy of any workflow).
//!
//! ```no_run
//! use ksef::blocking::Runtime;
//! use ksef::model::{ContextIdentifier, Environment, Nip};
//! use ksef::{KsefClient, TestIdentity};
//!
//! # fn demo(invoice_xml: Vec<u8>) -> Result<(), ksef::Error> {
//! let rt = Runtime::new()?;
//! let client = KsefClient::new(Environment::Test)?;
//! let nip: Nip = "5265877635".parse()?;
//! let identity = TestIdentity::Seal { name: "My company".into(), nip: nip.to_string() };
//! let auth = rt.block_on(client.auth().test_certificate(&identity, ContextIdentifier::Nip(nip)))?;
//! let session = rt.block_on(auth.sessions().open_online())?;
//! let accepted = rt.block_on(async { session.send_invoice(invoice_xml).await?.wait().await })?;
//! let closed = rt.block_on(session.close())?;
//! for invoice in rt.iter(closed.invoices()) {
//!     println!("{:?}", invoice?.ksef_number);
//! }
//! # let _ = accepted; Ok(()) }
//! ```

use std::future::Future;

use futures_util::{Stream, StreamExt};

use crate::error::{Error, Result};

/// A tokio runtime for blocking callers; see the [module docs](self). Cheap to share by
/// reference across threads (`block_on` takes `&self`).
#[derive(Debug)]
pub struct Runtime {
    rt: tokio::runtime::Runtime,
}

impl Runtime {
    /// A runtime with one worker thread (it keeps HTTP connections and token refreshes going
    /// between calls) and timers and I/O enabled. Refused inside an async runtime: there, call
    /// the async API directly.
    pub fn new() -> Result<Self> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::InvalidInput(
                "ksef::blocking::Runtime was created inside an async runtime; await the async API there instead".into(),
            ));
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("ksef-blocking")
            .enable_all()
            .build()
            .map_err(|e| Error::io("starting the blocking runtime", e))?;
        Ok(Self { rt })
    }

    /// Wraps a runtime you built yourself (it needs timers and I/O enabled).
    pub fn from_tokio(rt: tokio::runtime::Runtime) -> Self {
        Self { rt }
    }

    /// Runs `future` (any SDK call) to completion on this runtime and returns its output.
    ///
    /// Must not be called from async code (tokio refuses to block a runtime thread and panics);
    /// [`Runtime::new`] already refuses to start there.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.rt.block_on(future)
    }

    /// An auto-paging stream of the SDK (session invoices, queries, exports…) as a blocking
    /// iterator: each `next` runs the stream on this runtime until its next item.
    pub fn iter<'r, S>(&'r self, stream: S) -> impl Iterator<Item = S::Item> + 'r
    where
        S: Stream + 'r,
    {
        let mut stream = Box::pin(stream);
        std::iter::from_fn(move || self.rt.block_on(stream.next()))
    }
}
