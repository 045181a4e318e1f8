//! The connection layer: the listener the server accepts on (plain TCP, or TLS with a
//! certificate generated at start) and a per-connection kill switch, so an injected fault can
//! close a connection without sending any response.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::server::TlsStream;

/// The server certificate of `--tls`, generated at start.
pub(crate) struct TlsMaterial {
    /// The certificate (PEM), for clients to trust.
    pub cert_pem: String,
    acceptor: TlsAcceptor,
}

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up TLS: {0}")]
pub struct TlsError(String);

impl TlsMaterial {
    /// A self-signed P-256 certificate for `hosts` (DNS names or IP addresses), valid for the
    /// run; HTTP/1.1 over TLS 1.2/1.3 with the aws-lc-rs provider rustls already uses.
    pub fn generate(hosts: Vec<String>) -> Result<Self, TlsError> {
        let err = |e: &dyn std::fmt::Display| TlsError(e.to_string());
        let certified = rcgen::generate_simple_self_signed(hosts).map_err(|e| err(&e))?;
        let key =
            rustls::pki_types::PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der());
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| err(&e))?
            .with_no_client_auth()
            .with_single_cert(vec![certified.cert.der().clone()], key.into())
            .map_err(|e| err(&e))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsMaterial {
            cert_pem: certified.cert.pem(),
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// One accepted connection.
pub(crate) struct SimIo {
    stream: Stream,
    killed: Arc<AtomicBool>,
}

impl SimIo {
    fn new(stream: Stream) -> Self {
        SimIo {
            stream,
            killed: Arc::new(AtomicBool::new(false)),
        }
    }
}

macro_rules! delegate {
    ($self:ident, $s:ident => $e:expr) => {
        match &mut $self.stream {
            Stream::Plain($s) => {
                let $s = Pin::new($s);
                $e
            }
            Stream::Tls($s) => {
                let $s = Pin::new(&mut **$s);
                $e
            }
        }
    };
}

impl SimIo {
    fn dead(&self) -> bool {
        self.killed.load(Ordering::Relaxed)
    }
}

fn aborted() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "connection dropped by an injected fault",
    )
}

impl AsyncRead for SimIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.dead() {
            return Poll::Ready(Err(aborted()));
        }
        delegate!(self, s => s.poll_read(cx, buf))
    }
}

impl AsyncWrite for SimIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.dead() {
            return Poll::Ready(Err(aborted()));
        }
        delegate!(self, s => s.poll_write(cx, buf))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.dead() {
            return Poll::Ready(Err(aborted()));
        }
        delegate!(self, s => s.poll_flush(cx))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_shutdown(cx))
    }
}

/// What a handler knows about its connection.
#[derive(Debug, Clone)]
pub(crate) struct Conn {
    pub peer: SocketAddr,
    killed: Arc<AtomicBool>,
}

impl Conn {
    /// Closes the connection: no response (and nothing else) is written on it any more.
    pub fn kill(&self) {
        self.killed.store(true, Ordering::Relaxed);
    }
}

impl Connected<IncomingStream<'_, SimListener>> for Conn {
    fn connect_info(stream: IncomingStream<'_, SimListener>) -> Self {
        Conn {
            peer: *stream.remote_addr(),
            killed: stream.io().killed.clone(),
        }
    }
}

/// The listener: plain TCP, or TLS with handshakes on their own tasks (a slow client cannot
/// hold up the others).
pub(crate) enum SimListener {
    Plain(TcpListener),
    Tls {
        local: SocketAddr,
        ready: mpsc::Receiver<(SimIo, SocketAddr)>,
    },
}

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl SimListener {
    pub fn new(tcp: TcpListener, tls: Option<&TlsMaterial>) -> io::Result<Self> {
        let Some(tls) = tls else {
            return Ok(SimListener::Plain(tcp));
        };
        let local = tcp.local_addr()?;
        let acceptor = tls.acceptor.clone();
        let (tx, ready) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    a = TcpListener::accept(&tcp) => a,
                    // The server is gone: stop listening.
                    () = tx.closed() => return,
                };
                let Ok((stream, peer)) = accepted else {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    // A failed or slow handshake only loses that connection.
                    if let Ok(Ok(tls)) =
                        tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                    {
                        let _ = tx
                            .send((SimIo::new(Stream::Tls(Box::new(tls))), peer))
                            .await;
                    }
                });
            }
        });
        Ok(SimListener::Tls { local, ready })
    }
}

impl Listener for SimListener {
    type Io = SimIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (SimIo, SocketAddr) {
        match self {
            SimListener::Plain(tcp) => loop {
                match TcpListener::accept(tcp).await {
                    Ok((stream, peer)) => {
                        let _ = stream.set_nodelay(true);
                        return (SimIo::new(Stream::Plain(stream)), peer);
                    }
                    // Out of descriptors and the like: wait a little instead of spinning.
                    Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
                }
            },
            SimListener::Tls { ready, .. } => match ready.recv().await {
                Some(conn) => conn,
                // The accept task cannot end while we hold the receiver; never resolve.
                None => std::future::pending().await,
            },
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            SimListener::Plain(tcp) => tcp.local_addr(),
            SimListener::Tls { local, .. } => Ok(*local),
        }
    }
}
