//! Where the time of one issuance goes, measured in this process with the
//! server's own code: CSR verification, signing with a P-256 and an
//! RSA-2048 Local CA, the audit event's JSON, and recording the
//! certificates in the issuance database one transaction per certificate
//! against one transaction per batch. Single-threaded: each figure is the
//! cost on one core.

use std::sync::Arc;
use std::time::{Duration, Instant};

use certctl_common::db::{Database, DatabaseConfig};
use certctl_common::secret::MasterKey;
use certctl_domain::audit::NewAuditEvent;
use certctl_issuance::issuers::local_ca::{self, HierarchySpec, LocalCa};
use certctl_issuance::issuers::{Issuer as _, IssuerContext, LeafRequest};
use certctl_issuance::store::{IssuedRecord, IssuerRecord, Store};
use certctl_pki::KeyType;

/// One measured phase: microseconds per operation.
#[derive(Debug)]
pub struct Phase {
    pub name: String,
    pub micros_per_op: f64,
    pub ops: usize,
}

impl Phase {
    fn timed(name: impl Into<String>, ops: usize, elapsed: Duration) -> Self {
        Self { name: name.into(), micros_per_op: elapsed.as_secs_f64() * 1e6 / ops.max(1) as f64, ops }
    }
}

fn ca(key_type: KeyType, context: &IssuerContext) -> anyhow::Result<LocalCa> {
    let spec = HierarchySpec {
        common_name: "bench".to_owned(),
        organization: "certctl".to_owned(),
        key_type,
        root_lifetime_secs: 365 * 86_400,
    };
    let now = certctl_domain::now();
    let authorities = local_ca::generate_hierarchy("bench", &spec, context, now)?;
    let record = IssuerRecord {
        id: "bench".to_owned(),
        display_name: "bench".to_owned(),
        kind: local_ca::KIND.to_owned(),
        config: serde_json::json!({}),
        issuing_authority: local_ca::INTERMEDIATE_ID.to_owned(),
        create_time: now,
    };
    Ok(LocalCa::load(&record, authorities, context)?)
}

fn leaf_request(csr: &certctl_pki::VerifiedCsr) -> LeafRequest {
    let now = certctl_domain::now();
    LeafRequest {
        public_key: csr.public_key_data(),
        key_is_rsa: false,
        common_name: csr.common_name.clone(),
        dns_names: csr.dns_names.clone(),
        ip_addresses: Vec::new(),
        not_before: now - 60,
        not_after: now + 90 * 86_400,
        extended_key_usages: vec![certctl_domain::issuance::ExtendedKeyUsage::ServerAuth],
        serial: rand::random(),
    }
}

/// Runs every phase over `csrs` (P-256 PEM) and, for the database phases,
/// a fresh issuance schema in `database`.
pub async fn run(csrs: &[String], database: &DatabaseConfig, batch: usize) -> anyhow::Result<Vec<Phase>> {
    let mut out = Vec::new();
    let n = csrs.len();

    let t = Instant::now();
    let verified: Vec<_> = csrs.iter().map(|c| certctl_pki::verify_csr(c.as_bytes())).collect::<Result<_, _>>()?;
    out.push(Phase::timed("CSR verify (P-256)", n, t.elapsed()));

    let context = IssuerContext { master_key: MasterKey::generate(), public_url: "http://127.0.0.1:1".to_owned() };
    let mut signed = Vec::with_capacity(n);
    for (label, key_type) in [("sign, P-256 CA", KeyType::EcdsaP256), ("sign, RSA-2048 CA", KeyType::Rsa2048)] {
        let ca = ca(key_type, &context)?;
        let t = Instant::now();
        for csr in &verified {
            let leaf = ca.sign(leaf_request(csr)).await?;
            if key_type == KeyType::EcdsaP256 {
                signed.push(leaf);
            }
        }
        out.push(Phase::timed(label, n, t.elapsed()));
    }

    let now = certctl_domain::now();
    let records: Vec<IssuedRecord> = signed
        .into_iter()
        .zip(&verified)
        .map(|(leaf, csr)| IssuedRecord {
            issuer_id: "local".to_owned(),
            serial: format!("{:032x}", rand::random::<u128>()),
            authority_id: leaf.authority_id,
            pem_chain: leaf.pem_chain,
            common_name: csr.common_name.clone().unwrap_or_default(),
            subject_alt_names: csr.dns_names.clone(),
            profile_id: "tls-server".to_owned(),
            certificate_id: None,
            certificate_version: None,
            request_id: None,
            not_before: leaf.not_before,
            not_after: leaf.not_after,
            sealed_key: None,
            server_keyed: false,
            revocation: None,
            revocation_synced: true,
            create_time: now,
        })
        .collect();
    let t = Instant::now();
    let events: Vec<NewAuditEvent> = records
        .iter()
        .map(|r| NewAuditEvent {
            actor: "anonymous".to_owned(),
            action: "SignCertificate".to_owned(),
            resource: r.name(),
            event_time_micros: now * 1_000_000,
            request_id: String::new(),
            details: serde_json::json!({
                "authority": format!("issuers/local/authorities/{}", r.authority_id),
                "profile": "profiles/tls-server",
                "common_name": r.common_name,
                "subject_alt_names": r.subject_alt_names,
                "key_algorithm": "ecdsa-p256",
                "not_after": r.not_after,
                "certificate": None::<String>,
                "server_keyed": false,
            }),
            source: "issuance".to_owned(),
            source_id: format!("{:032x}", rand::random::<u128>()),
        })
        .collect();
    out.push(Phase::timed("audit event (JSON details)", n, t.elapsed()));

    let db = Database::connect(database, certctl_issuance::SERVICE).await?;
    certctl_issuance::migrate(&db).await?;
    let store: Arc<dyn Store> = certctl_issuance::store(db);
    let half = n / 2;
    let t = Instant::now();
    for (r, e) in records[..half].iter().zip(&events[..half]) {
        store.insert_issued(std::slice::from_ref(r), std::slice::from_ref(e)).await?;
    }
    out.push(Phase::timed(format!("record, 1 per transaction ({})", database.describe()), half, t.elapsed()));
    let t = Instant::now();
    for (r, e) in records[half..].chunks(batch.max(1)).zip(events[half..].chunks(batch.max(1))) {
        store.insert_issued(r, e).await?;
    }
    out.push(Phase::timed(format!("record, {batch} per transaction ({})", database.describe()), n - half, t.elapsed()));
    Ok(out)
}
