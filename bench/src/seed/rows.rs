//! The synthetic inventory: deterministic rows with a realistic spread of
//! owners, teams, environments, issuers and expiries, and the SQL text that
//! inserts them in the layout of `services/inventory/src/store/sql.rs`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use certctl_domain::UnixTime;
use certctl_domain::inventory::{Certificate, CurrentVersion, DAY, Owner, RenewalPolicy, Team};
use certctl_pki::KeyType;
use certctl_pki::generate::CertificateAuthority;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

pub const OWNERS: usize = 200;
pub const TEAMS: [&str; 20] = [
    "payments",
    "checkout",
    "identity",
    "search",
    "ads",
    "billing",
    "platform",
    "data",
    "ml",
    "mobile",
    "web",
    "edge",
    "messaging",
    "storage",
    "security",
    "observability",
    "support",
    "growth",
    "infra",
    "devtools",
];
/// Environments and their weights out of ten.
const ENVIRONMENTS: [(&str, u32); 3] = [("prod", 5), ("staging", 3), ("dev", 2)];
const PENDING_FRACTION: f64 = 0.01;
const REVOKED_FRACTION: f64 = 0.005;
/// Same as the inventory's `PENDING_EXPIRY_KEY`.
const PENDING_EXPIRY_KEY: i64 = i64::MAX;
const RNG_SEED: u64 = 0x5eed_c347;

#[derive(Debug)]
struct IssuerKind {
    name: &'static str,
    dn: &'static str,
    lifetime: i64,
    key_algorithm: &'static str,
    key_size: i64,
}

const ISSUERS: [IssuerKind; 4] = [
    IssuerKind {
        name: "issuers/letsencrypt",
        dn: "C=US, O=Let's Encrypt, CN=R11",
        lifetime: 90 * DAY,
        key_algorithm: "ECDSA_P256",
        key_size: 256,
    },
    IssuerKind {
        name: "issuers/internal-ca",
        dn: "O=Example Corp, CN=Example Internal CA",
        lifetime: 365 * DAY,
        key_algorithm: "ECDSA_P256",
        key_size: 256,
    },
    IssuerKind {
        name: "issuers/digicert",
        dn: "C=US, O=DigiCert Inc, CN=DigiCert Global G2 TLS RSA SHA256 2020 CA1",
        lifetime: 397 * DAY,
        key_algorithm: "RSA_2048",
        key_size: 2048,
    },
    IssuerKind {
        name: "issuers/vault-pki",
        dn: "O=Example Corp, CN=Vault PKI Intermediate",
        lifetime: 30 * DAY,
        key_algorithm: "ECDSA_P384",
        key_size: 384,
    },
];

/// One synthetic certificate.
#[derive(Debug, Clone)]
pub(super) struct Row {
    index: u64,
    owner: usize,
    environment: &'static str,
    issuer: &'static IssuerKind,
    sans: usize,
    /// `None` while pending (no version yet).
    validity: Option<(UnixTime, UnixTime)>,
    revoked: bool,
    create_time: UnixTime,
}

impl Row {
    fn id(&self) -> String {
        format!("cert-{:07}", self.index)
    }

    fn team(&self) -> &'static str {
        TEAMS[self.owner % TEAMS.len()]
    }

    fn common_name(&self) -> String {
        format!("svc-{}.{}.example.com", self.index, self.team())
    }

    fn subject_alt_names(&self) -> Vec<String> {
        let (i, team, env) = (self.index, self.team(), self.environment);
        [self.common_name(), format!("api-{i}.{team}.example.com"), format!("svc-{i}.{env}.{team}.internal")]
            .into_iter()
            .take(self.sans)
            .collect()
    }

    /// What the inventory searches: the lower-case CN and SANs, space separated.
    fn search_text(&self) -> String {
        let mut parts = vec![self.common_name().to_lowercase()];
        parts.extend(self.subject_alt_names().iter().map(|s| s.to_lowercase()));
        parts.join(" ")
    }

    /// Unique per row: `mix` is a bijection.
    fn serial_number(&self) -> String {
        format!("{:016X}{:016X}", mix(self.index), mix(self.index ^ 0xA5A5_A5A5))
    }

    fn fingerprint(&self) -> String {
        let i = self.index;
        format!(
            "{:016x}{:016x}{:016x}{:016x}",
            mix(!i),
            mix(i.rotate_left(17)),
            mix(i ^ 0x5EED),
            mix(i.wrapping_mul(3))
        )
    }
}

/// splitmix64's finaliser: every step is invertible, so distinct inputs give distinct outputs.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Deterministic rows: the same count gives the same inventory every time.
pub(super) struct Generator {
    now: UnixTime,
    rng: StdRng,
}

impl Generator {
    pub(super) fn new(now: UnixTime) -> Self {
        Self { now, rng: StdRng::seed_from_u64(RNG_SEED) }
    }

    pub(super) fn row(&mut self, index: u64) -> Row {
        let rng = &mut self.rng;
        let owner = rng.random_range(0..OWNERS);
        let mut pick = rng.random_range(0..10);
        let environment = ENVIRONMENTS
            .iter()
            .find(|(_, weight)| {
                let hit = pick < *weight;
                pick = pick.saturating_sub(*weight);
                hit
            })
            .map_or("prod", |(env, _)| env);
        let issuer = &ISSUERS[rng.random_range(0..ISSUERS.len())];
        let sans = rng.random_range(1..=3);
        let pending = rng.random_bool(PENDING_FRACTION);
        let revoked = !pending && rng.random_bool(REVOKED_FRACTION);
        // Expiry spread uniformly from 30 days ago to a year ahead.
        let not_after = self.now - 30 * DAY + rng.random_range(0..395 * DAY);
        let not_before = (not_after - issuer.lifetime).min(self.now - 3600);
        let (validity, create_time) = if pending {
            (None, self.now - rng.random_range(0..30 * DAY))
        } else {
            (Some((not_before, not_after)), not_before - rng.random_range(0..7 * DAY))
        };
        Row { index, owner, environment, issuer, sans, validity, revoked, create_time }
    }
}

impl Row {
    /// What the inventory stores on every write (`Certificate::next_issue_time`).
    fn renew_time(&self) -> Option<UnixTime> {
        let certificate = Certificate {
            id: self.id(),
            issuer: self.issuer.name.to_owned(),
            revoked: self.revoked,
            create_time: self.create_time,
            current: self.validity.map(|(not_before, not_after)| CurrentVersion {
                version: 1,
                serial_number: String::new(),
                sha256_fingerprint: String::new(),
                not_before,
                not_after,
            }),
            ..Default::default()
        };
        // Seeded certificates have no renewal policy: the default's timing.
        certificate.next_issue_time(&RenewalPolicy::default())
    }
}

/// A SQL string literal.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn json<T: serde::Serialize + ?Sized>(value: &T) -> anyhow::Result<String> {
    Ok(quote(&serde_json::to_string(value)?))
}

fn alert_lead_secs() -> i64 {
    // Seeded certificates have no renewal policy, so they get the default's lead.
    RenewalPolicy::default().alert_lead_secs()
}

pub(super) fn documents_sql(now: UnixTime) -> anyhow::Result<String> {
    let mut sql = String::from("INSERT INTO teams (id, body, create_time, update_time) VALUES ");
    for (i, team) in TEAMS.iter().enumerate() {
        let doc = Team {
            id: (*team).to_owned(),
            display_name: format!("Team {team}"),
            email: format!("{team}@example.com"),
            create_time: now,
            update_time: now,
        };
        let sep = if i == 0 { "" } else { ", " };
        write!(sql, "{sep}({}, {}, {now}, {now})", quote(&doc.id), json(&doc)?)?;
    }
    sql.push_str("; INSERT INTO owners (id, body, create_time, update_time) VALUES ");
    for k in 0..OWNERS {
        let doc = Owner {
            id: format!("o{k}"),
            display_name: format!("Owner {k}"),
            email: format!("o{k}@example.com"),
            team: format!("teams/{}", TEAMS[k % TEAMS.len()]),
            create_time: now,
            update_time: now,
        };
        let sep = if k == 0 { "" } else { ", " };
        write!(sql, "{sep}({}, {}, {now}, {now})", quote(&doc.id), json(&doc)?)?;
    }
    Ok(sql)
}

pub(super) fn certificates_sql(rows: &[Row]) -> String {
    let lead = alert_lead_secs();
    let mut sql = String::with_capacity(rows.len() * 700);
    sql.push_str(
        "INSERT INTO certificates (id, display_name, common_name, sans, owner, team, environment, issuer, profile, \
         renewal_policy, targets, labels, metadata, search_text, current_version, serial_number, fingerprint, \
         not_before, expiry_key, expiring_at, alert_lead_secs, revoked, create_time, update_time, renew_time) VALUES ",
    );
    for (n, row) in rows.iter().enumerate() {
        let labels: BTreeMap<&str, String> =
            [("app", format!("svc-{}", row.index)), ("tier", ["web", "api", "worker"][row.sans - 1].to_owned())].into();
        let (version, serial, fingerprint, not_before, expiry_key, expiring_at, update_time) = match row.validity {
            Some((nb, na)) => (
                "1".to_owned(),
                row.serial_number(),
                row.fingerprint(),
                nb.to_string(),
                na,
                (na - lead).to_string(),
                nb.max(row.create_time),
            ),
            None => (
                "NULL".into(),
                String::new(),
                String::new(),
                "NULL".into(),
                PENDING_EXPIRY_KEY,
                "NULL".into(),
                row.create_time,
            ),
        };
        let sep = if n == 0 { "" } else { "," };
        // Plain data always serialises; unwraps here cannot fail.
        let _ = write!(
            sql,
            "{sep}({id}, {display}, {cn}, {sans}, {owner}, {team}, {env}, {issuer}, '', '', '[]', {labels}, '{{}}', \
             {search}, {version}, {serial}, {fingerprint}, {not_before}, {expiry_key}, {expiring_at}, {lead}, {revoked}, \
             {created}, {update_time}, {renew_time})",
            id = quote(&row.id()),
            display = quote(&format!("svc-{} ({})", row.index, row.environment)),
            cn = quote(&row.common_name()),
            sans = json(&row.subject_alt_names()).expect("strings serialise"),
            owner = quote(&format!("owners/o{}", row.owner)),
            team = quote(&format!("teams/{}", row.team())),
            env = quote(row.environment),
            issuer = quote(row.issuer.name),
            labels = json(&labels).expect("strings serialise"),
            search = quote(&row.search_text()),
            serial = quote(&serial),
            fingerprint = quote(&fingerprint),
            revoked = if row.revoked { "TRUE" } else { "FALSE" },
            created = row.create_time,
            renew_time = row.renew_time().map_or_else(|| "NULL".to_owned(), |t| t.to_string()),
        );
    }
    sql
}

/// The version rows of the issued certificates, at most 1000 per statement
/// (the shared PEM makes them large).
pub(super) fn versions_sql(rows: &[Row], pem_chain: &str) -> Vec<String> {
    let pem = quote(pem_chain);
    let issued: Vec<&Row> = rows.iter().filter(|r| r.validity.is_some()).collect();
    issued
        .chunks(1000)
        .map(|chunk| {
            let mut sql = String::with_capacity(chunk.len() * (pem.len() + 400));
            sql.push_str(
                "INSERT INTO certificate_versions (certificate_id, version, pem_chain, serial_number, fingerprint, \
                 subject, issuer_dn, common_name, sans, key_algorithm, key_size, not_before, not_after, create_time) VALUES ",
            );
            for (n, row) in chunk.iter().enumerate() {
                let (not_before, not_after) = row.validity.expect("only issued rows");
                let sep = if n == 0 { "" } else { "," };
                let _ = write!(
                    sql,
                    "{sep}({id}, 1, {pem}, {serial}, {fingerprint}, {subject}, {issuer}, {cn}, {sans}, {alg}, {size}, \
                     {not_before}, {not_after}, {not_before})",
                    id = quote(&row.id()),
                    serial = quote(&row.serial_number()),
                    fingerprint = quote(&row.fingerprint()),
                    subject = quote(&format!("CN={}", row.common_name())),
                    issuer = quote(row.issuer.dn),
                    cn = quote(&row.common_name()),
                    sans = json(&row.subject_alt_names()).expect("strings serialise"),
                    alg = quote(row.issuer.key_algorithm),
                    size = row.issuer.key_size,
                );
            }
            sql
        })
        .collect()
}

/// One real chain (leaf and CA), generated once and stored in every version:
/// what is measured is the database, not the variety of PEM text.
pub(super) fn sample_pem_chain(now: UnixTime) -> anyhow::Result<String> {
    let ca = CertificateAuthority::new("certctl bench CA", KeyType::EcdsaP256)?;
    let leaf = ca.issue_leaf(
        "svc-0.payments.example.com",
        &["svc-0.payments.example.com".to_owned(), "api-0.payments.example.com".to_owned()],
        KeyType::EcdsaP256,
        now - DAY,
        90 * DAY,
    )?;
    Ok(format!("{}{}", leaf.certificate_pem, ca.certificate_pem))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_doubles_single_quotes() {
        assert_eq!(quote("Let's Encrypt"), "'Let''s Encrypt'");
        assert_eq!(quote(""), "''");
    }

    #[test]
    fn rows_are_varied_and_unique() {
        let now = 1_800_000_000;
        let mut g = Generator::new(now);
        let rows: Vec<Row> = (0..20_000).map(|i| g.row(i)).collect();
        let serials: std::collections::HashSet<String> = rows.iter().map(Row::serial_number).collect();
        let prints: std::collections::HashSet<String> = rows.iter().map(Row::fingerprint).collect();
        assert_eq!((serials.len(), prints.len()), (rows.len(), rows.len()));
        assert!(rows.iter().all(|r| r.fingerprint().len() == 64 && r.serial_number().len() == 32));
        let pending = rows.iter().filter(|r| r.validity.is_none()).count();
        assert!((100..300).contains(&pending), "{pending} pending of 20000");
        let owners: std::collections::HashSet<usize> = rows.iter().map(|r| r.owner).collect();
        assert_eq!(owners.len(), OWNERS);
        for r in &rows {
            if let Some((nb, na)) = r.validity {
                assert!(nb < na && nb < now && (now - 30 * DAY..now + 365 * DAY).contains(&na), "{r:?}");
            }
        }
        assert_eq!(rows[7].search_text().split(' ').next(), Some(rows[7].common_name().as_str()));
    }
}
