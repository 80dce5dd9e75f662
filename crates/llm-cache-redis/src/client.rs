//! Making the `redis::Client`: plain TCP (`redis://`) or TLS (`rediss://`),
//! with an optional CA file for a private certificate authority.

use std::path::Path;

use llm_core::ConfigError;
use redis::{ConnectionAddr, IntoConnectionInfo, TlsCertificates};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::RootCertStore;

use crate::redact::{redact_url, Scrubber};

/// Config key of the URL, in errors.
const URL_KEY: &str = "caching.redis_url";
/// Config key of the CA file, in errors.
const CA_KEY: &str = "caching.redis_ca_file";

/// A client for `url`, trusting the CAs of `ca_file` (PEM) instead of the
/// public roots when given. Reads the CA file but never connects.
pub(crate) fn open(url: &str, ca_file: Option<&Path>) -> Result<redis::Client, ConfigError> {
    let shown = redact_url(url);
    let invalid_url = |e: redis::RedisError| {
        let scrubber = Scrubber::new(url, None);
        ConfigError::new(format!(
            "invalid Redis URL `{shown}`: {}",
            scrubber.scrub(&e.to_string())
        ))
        .with_key(URL_KEY)
    };
    let info = url.into_connection_info().map_err(invalid_url)?;
    let tls = match info.addr() {
        ConnectionAddr::TcpTls { insecure: true, .. } => {
            return Err(ConfigError::new(format!(
                "invalid Redis URL `{shown}`: `#insecure` (no certificate verification) is not \
                 supported; trust a private CA with `redis_ca_file` instead"
            ))
            .with_key(URL_KEY));
        }
        ConnectionAddr::TcpTls { .. } => true,
        _ => false,
    };
    if tls {
        ensure_crypto_provider();
    }
    let Some(path) = ca_file else {
        return redis::Client::open(info).map_err(invalid_url);
    };
    let ca_error = |what: String| {
        ConfigError::new(format!("CA file `{}`: {what}", path.display())).with_key(CA_KEY)
    };
    if !tls {
        return Err(ca_error(format!(
            "a CA file needs a TLS URL (`rediss://…`), but `{shown}` is not one"
        )));
    }
    let pem = std::fs::read(path).map_err(|e| ca_error(format!("cannot be read: {e}")))?;
    check_certificates(&pem).map_err(ca_error)?;
    let certificates = TlsCertificates {
        client_tls: None,
        root_cert: Some(pem),
    };
    redis::Client::build_with_tls(info, certificates).map_err(|e| {
        let scrubber = Scrubber::new(url, None);
        ca_error(scrubber.scrub(&e.to_string()))
    })
}

/// Every PEM certificate in `pem` is a usable trust anchor, and there is one at least.
fn check_certificates(pem: &[u8]) -> Result<(), String> {
    let mut store = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| format!("invalid PEM: {e}"))?;
        store.add(cert).map_err(|e| match e {
            // Its Display speaks of a "peer" certificate: not this one.
            rustls::Error::InvalidCertificate(why) => format!("not a valid certificate ({why:?})"),
            other => format!("not a valid certificate: {other}"),
        })?;
    }
    if store.is_empty() {
        return Err("no certificate in it (expected `-----BEGIN CERTIFICATE-----` blocks)".into());
    }
    Ok(())
}

/// The `redis` crate builds its TLS configuration on rustls' process-wide
/// crypto provider, and rustls panics when there is none and it cannot pick
/// one. Installs `ring` (the provider this workspace builds rustls with) when
/// nothing is installed yet; a provider the application installed is kept.
fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race with another installer is fine: one is installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rediss_urls_are_accepted_and_insecure_ones_refused() {
        assert!(open("rediss://:pw@127.0.0.1:6380/0", None).is_ok());
        assert!(open("valkeys://127.0.0.1:6380/0", None).is_ok());
        let err = open("rediss://:pw-9@127.0.0.1:6380/0#insecure", None).unwrap_err();
        assert_eq!(err.key.as_deref(), Some(URL_KEY));
        assert!(err.message.contains("#insecure"), "{err}");
        assert!(!err.to_string().contains("pw-9"), "{err}");
    }

    #[test]
    fn pem_without_certificates_is_refused() {
        let err = check_certificates(b"").unwrap_err();
        assert!(err.contains("no certificate"), "{err}");
        let err =
            check_certificates(b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n")
                .unwrap_err();
        assert!(err.contains("invalid PEM"), "{err}");
        let err = check_certificates(
            b"-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n",
        )
        .unwrap_err();
        assert!(
            err.contains("not a valid certificate (BadEncoding)"),
            "{err}"
        );
    }
}
