//! `dovecot`: the full chain at `certificate_path` (`ssl_cert = <...`) and
//! the key at `key_path` (`ssl_key = <...`). Checked with `doveconf -n -x`,
//! which opens the files the configuration names (plain `doveconf -n` does
//! not) and prints the certificate, hence `>/dev/null`; loaded with
//! `doveadm reload`. Verified over IMAP:
//! `a STARTTLS`, then the handshake; on port 993 (imaps), TLS from the first byte.

use certctl_domain::inventory::TargetConfig;

use super::web::{self, DefaultCommand, Kind};
use super::{Protocol, Target, TargetError};

/// The port of IMAP over implicit TLS (RFC 8314).
const IMAPS_PORT: u16 = 993;

const DOVECOT: Kind = Kind {
    name: "dovecot",
    default_validate: DefaultCommand { command: "doveconf -n -x >/dev/null", package: "dovecot-core" },
    default_reload: DefaultCommand { command: "doveadm reload", package: "dovecot-core" },
    key_optional: false,
    layout: web::fullchain_then_key,
    protocol,
};

fn protocol(port: u16) -> Protocol {
    if port == IMAPS_PORT { Protocol::Tls } else { Protocol::ImapStartTls }
}

pub(super) fn build(config: &TargetConfig) -> Result<Box<dyn Target>, TargetError> {
    web::build(&DOVECOT, config)
}
