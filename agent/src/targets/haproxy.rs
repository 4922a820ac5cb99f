//! `haproxy`: one PEM at `certificate_path` (`crt`) holding the full chain
//! and the key, mode 0600. With `key_path` set, the key goes there instead
//! and `certificate_path` holds the chain alone: haproxy's sidecar
//! convention, where `crt site.crt` also loads `site.key`. Checked with
//! `haproxy -c -f /etc/haproxy/haproxy.cfg`, loaded with
//! `systemctl reload haproxy`.

use certctl_domain::inventory::TargetConfig;

use super::web::{self, DefaultCommand, Kind};
use super::{Target, TargetError};

const HAPROXY: Kind = Kind {
    name: "haproxy",
    default_validate: DefaultCommand { command: "haproxy -c -f /etc/haproxy/haproxy.cfg", package: "haproxy" },
    default_reload: DefaultCommand { command: "systemctl reload haproxy", package: "systemd" },
    key_optional: true,
    layout: web::fullchain_then_key,
    protocol: web::tls_only,
};

pub(super) fn build(config: &TargetConfig) -> Result<Box<dyn Target>, TargetError> {
    web::build(&HAPROXY, config)
}
