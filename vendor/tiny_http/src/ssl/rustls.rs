// ikd-field patch: ported from rustls 0.20 to rustls 0.23 (ring provider), PEM through
// rustls-pki-types, no panics on a bad key file, and a deadline on the TLS handshake.
use crate::connection::{Connection, HEAD_TIMEOUT};
use crate::util::refined_tcp_stream::Stream as RefinedStream;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::error::Error;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use zeroize::Zeroizing;

/// A wrapper around an owned Rustls connection and corresponding stream.
///
/// Uses an internal Mutex to permit disparate reader & writer threads to access the stream independently.
pub(crate) struct RustlsStream(
    Arc<Mutex<rustls::StreamOwned<rustls::ServerConnection, Connection>>>,
    /// The handshake must be over by then (a client cannot hold a thread by dribbling it).
    Instant,
);

impl RustlsStream {
    pub(crate) fn peer_addr(&mut self) -> std::io::Result<Option<SocketAddr>> {
        self.lock()?.sock.peer_addr()
    }

    pub(crate) fn shutdown(&mut self, how: Shutdown) -> std::io::Result<()> {
        self.lock()?.sock.shutdown(how)
    }

    fn lock(
        &self,
    ) -> std::io::Result<
        std::sync::MutexGuard<'_, rustls::StreamOwned<rustls::ServerConnection, Connection>>,
    > {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("TLS stream lock poisoned"))
    }
}

impl Clone for RustlsStream {
    fn clone(&self) -> Self {
        Self(self.0.clone(), self.1)
    }
}

/// Drives the handshake one socket read at a time, giving up once `deadline` has passed.
fn handshake(
    s: &mut rustls::StreamOwned<rustls::ServerConnection, Connection>,
    deadline: Instant,
) -> std::io::Result<()> {
    while s.conn.is_handshaking() {
        if Instant::now() > deadline {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "TLS handshake too slow",
            ));
        }
        if s.conn.wants_write() {
            s.conn.write_tls(&mut s.sock)?;
            continue;
        }
        if s.conn.read_tls(&mut s.sock)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if let Err(e) = s.conn.process_new_packets() {
            // Send the alert that says why, then give up.
            let _ = s.conn.write_tls(&mut s.sock);
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e));
        }
    }
    while s.conn.wants_write() {
        s.conn.write_tls(&mut s.sock)?;
    }
    Ok(())
}

impl Read for RustlsStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let deadline = self.1;
        let mut s = self.lock()?;
        if s.conn.is_handshaking() {
            handshake(&mut s, deadline)?;
        }
        s.read(buf)
    }
}

impl Write for RustlsStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.lock()?.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.lock()?.flush()
    }
}

pub(crate) struct RustlsContext(Arc<rustls::ServerConfig>);

impl RustlsContext {
    pub(crate) fn from_pem(
        certificates: Vec<u8>,
        private_key: Zeroizing<Vec<u8>>,
    ) -> Result<Self, Box<dyn Error + Send + Sync>> {
        let certificate_chain = CertificateDer::pem_slice_iter(&certificates)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("the certificate file is not PEM: {e}"))?;
        if certificate_chain.is_empty() {
            return Err("the certificate file holds no CERTIFICATE block".into());
        }
        let private_key = PrivateKeyDer::from_pem_slice(&private_key).map_err(|e| {
            format!(
                "the key file holds no usable private key (PKCS#8, PKCS#1 or SEC1 PEM, not encrypted): {e}"
            )
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls_conf = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(certificate_chain, private_key)?;
        tls_conf.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self(Arc::new(tls_conf)))
    }

    pub(crate) fn accept(
        &self,
        stream: Connection,
    ) -> Result<RustlsStream, Box<dyn Error + Send + Sync + 'static>> {
        let connection = rustls::ServerConnection::new(self.0.clone())?;
        Ok(RustlsStream(
            Arc::new(Mutex::new(rustls::StreamOwned::new(connection, stream))),
            Instant::now() + HEAD_TIMEOUT,
        ))
    }
}

impl From<RustlsStream> for RefinedStream {
    fn from(stream: RustlsStream) -> Self {
        Self::Https(stream)
    }
}
