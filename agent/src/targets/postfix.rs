//! `postfix`: the full chain at `certificate_path` (`smtpd_tls_cert_file`)
//! and the key at `key_path` (`smtpd_tls_key_file`); without `key_path`, one
//! file, mode 0600, holding the key followed by the chain, the order that
//! both `smtpd_tls_chain_files` and `smtpd_tls_cert_file` (whose key file
//! defaults to the certificate file) accept. Checked with `postfix check`,
//! loaded with `postfix reload` (each new smtpd process reads the files).
//! Verified over SMTP: `EHLO`, `STARTTLS`, then the handshake; on port 465
//! (submissions), TLS from the first byte.

use certctl_domain::inventory::TargetConfig;

use super::files::FileSpec;
use super::web::{self, CERT_MODE, DefaultCommand, KEY_MODE, Kind, Paths, spec};
use super::{Bundle, Protocol, Target, TargetError};

/// The port of SMTP submission over implicit TLS (RFC 8314).
const SUBMISSIONS_PORT: u16 = 465;

const POSTFIX: Kind = Kind {
    name: "postfix",
    default_validate: DefaultCommand { command: "postfix check", package: "postfix" },
    default_reload: DefaultCommand { command: "postfix reload", package: "postfix" },
    key_optional: true,
    layout,
    protocol,
};

fn layout(paths: &Paths, bundle: &Bundle) -> Vec<FileSpec> {
    match &paths.key {
        None => vec![spec(&paths.certificate, format!("{}{}", bundle.key(), bundle.fullchain()), KEY_MODE)],
        Some(key) => vec![spec(&paths.certificate, bundle.fullchain(), CERT_MODE), spec(key, bundle.key(), KEY_MODE)],
    }
}

fn protocol(port: u16) -> Protocol {
    if port == SUBMISSIONS_PORT { Protocol::Tls } else { Protocol::SmtpStartTls }
}

pub(super) fn build(config: &TargetConfig) -> Result<Box<dyn Target>, TargetError> {
    web::build(&POSTFIX, config)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::targets::test_bundle;

    #[test]
    fn without_a_key_path_the_key_comes_first() {
        let bundle = test_bundle("mail.example.test");
        let paths = Paths { certificate: PathBuf::from("/etc/postfix/tls/mail.pem"), key: None };
        let [combined] = layout(&paths, &bundle).try_into().unwrap_or_else(|_| panic!("one file"));
        assert_eq!(combined.contents, format!("{}{}", bundle.key(), bundle.fullchain()).into_bytes());
        assert_eq!(combined.mode, KEY_MODE);

        let paths = Paths { key: Some(PathBuf::from("/etc/postfix/tls/mail.key")), ..paths };
        let [certificate, key] = layout(&paths, &bundle).try_into().unwrap_or_else(|_| panic!("two files"));
        assert_eq!(certificate.contents, bundle.fullchain().into_bytes());
        assert_eq!((key.contents, key.mode), (bundle.key().into_bytes(), KEY_MODE));
    }
}
