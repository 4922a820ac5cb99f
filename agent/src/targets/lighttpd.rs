//! `lighttpd`: the full chain at `certificate_path` (`ssl.pemfile`) and the
//! key at `key_path` (`ssl.privkey`, lighttpd 1.4.53 and later); without
//! `key_path`, the key follows the chain in the `ssl.pemfile`, mode 0600.
//! Checked with `lighttpd -tt`, which loads the TLS module and with it the
//! files, and loaded with `systemctl restart lighttpd`: a graceful restart
//! (SIGUSR1, `systemctl reload`) reads the files again as the user lighttpd
//! dropped to, and a key only root can read then stops the server.

use certctl_domain::inventory::TargetConfig;

use super::web::{self, DefaultCommand, Kind};
use super::{Target, TargetError};

const LIGHTTPD: Kind = Kind {
    name: "lighttpd",
    default_validate: DefaultCommand { command: "lighttpd -tt -f /etc/lighttpd/lighttpd.conf", package: "lighttpd" },
    default_reload: DefaultCommand { command: "systemctl restart lighttpd", package: "systemd" },
    key_optional: true,
    layout: web::fullchain_then_key,
    protocol: web::tls_only,
};

pub(super) fn build(config: &TargetConfig) -> Result<Box<dyn Target>, TargetError> {
    web::build(&LIGHTTPD, config)
}
