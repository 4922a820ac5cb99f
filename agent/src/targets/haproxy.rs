//! `haproxy`: one PEM at `certificate_path` (`crt`) holding the full chain
//! and the key, mode 0600. With `key_path` set, the key goes there instead
//! and `certificate_path` holds the chain alone: haproxy's sidecar
//! convention, where `crt site.crt` also loads `site.key`. Checked with
//! `haproxy -c -f /etc/haproxy/haproxy.cfg`, loaded with
//! `systemctl reload haproxy`.

use certctl_domain::inventory::TargetConfig;

use super::web::{self, CERT_MODE, DefaultCommand, KEY_MODE, Kind, Paths, spec};
use super::{Bundle, Target, TargetError};
use crate::targets::files::FileSpec;

const HAPROXY: Kind = Kind {
    name: "haproxy",
    default_validate: DefaultCommand { command: "haproxy -c -f /etc/haproxy/haproxy.cfg", package: "haproxy" },
    default_reload: DefaultCommand { command: "systemctl reload haproxy", package: "systemd" },
    key_optional: true,
    layout,
};

fn layout(paths: &Paths, bundle: &Bundle) -> Vec<FileSpec> {
    match &paths.key {
        None => vec![spec(&paths.certificate, format!("{}{}", bundle.fullchain(), bundle.key()), KEY_MODE)],
        Some(key) => vec![spec(&paths.certificate, bundle.fullchain(), CERT_MODE), spec(key, bundle.key(), KEY_MODE)],
    }
}

pub(super) fn build(config: &TargetConfig) -> Result<Box<dyn Target>, TargetError> {
    web::build(&HAPROXY, config)
}
