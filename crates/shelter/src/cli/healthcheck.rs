//! `shelter healthcheck`: asks the server on this machine whether it is ready, for a
//! container's `HEALTHCHECK`, whose image has no curl.

use std::io::{Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context as _, bail};

use crate::config::Settings;

const TIMEOUT: Duration = Duration::from_secs(3);

/// `Ok` when `GET /health/ready` answers 200 within three seconds.
///
/// # Errors
/// No answer, or any other status.
pub fn check(settings: &Settings) -> anyhow::Result<()> {
    // A server listening on every address is reached on loopback.
    let host = match settings.host.parse::<IpAddr>() {
        Ok(ip) if !ip.is_unspecified() => ip,
        _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
    };
    let address = SocketAddr::new(host, settings.port);
    let mut stream = TcpStream::connect_timeout(&address, TIMEOUT)
        .with_context(|| format!("connect to {address}"))?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    stream
        .write_all(b"GET /health/ready HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
    let mut head = [0_u8; 12];
    stream.read_exact(&mut head).context("read the answer")?;
    match &head {
        b"HTTP/1.1 200" => Ok(()),
        other => bail!("not ready: {}", String::from_utf8_lossy(other)),
    }
}
