//! Deployments: the latest state of each certificate on each of its targets,
//! as the jobs that deploy them report it.

use crate::error::Violations;
use crate::name::{self, Collection};
use crate::{DomainError, UnixTime};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeploymentState {
    Pending,
    /// Installed, not verified (the target has no endpoint to check).
    Deployed,
    Verified,
    /// Installed, but the endpoint serves another certificate.
    Mismatch,
    Failed,
}

impl DeploymentState {
    pub const ALL: [Self; 5] = [Self::Pending, Self::Deployed, Self::Verified, Self::Mismatch, Self::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Deployed => "DEPLOYED",
            Self::Verified => "VERIFIED",
            Self::Mismatch => "MISMATCH",
            Self::Failed => "FAILED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == s)
    }

    /// The certificate was installed.
    fn installed(self) -> bool {
        matches!(self, Self::Deployed | Self::Verified | Self::Mismatch)
    }

    /// The endpoint was checked.
    fn checked(self) -> bool {
        matches!(self, Self::Verified | Self::Mismatch)
    }
}

/// One (certificate, target): which version went there last, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    pub certificate_id: String,
    pub target_id: String,
    pub version: i64,
    pub state: DeploymentState,
    /// Hex SHA-256, lower case; empty when no endpoint was checked.
    pub served_fingerprint: String,
    pub message: String,
    pub deploy_time: Option<UnixTime>,
    pub verify_time: Option<UnixTime>,
    pub update_time: UnixTime,
    /// `jobs/{job}`, or empty.
    pub job: String,
}

impl Deployment {
    pub fn name(&self) -> String {
        deployment_name(&self.certificate_id, &self.target_id)
    }

    pub fn version_name(&self) -> String {
        name::version_name(&self.certificate_id, self.version)
    }

    pub fn target_name(&self) -> String {
        Collection::Targets.name(&self.target_id)
    }
}

/// `certificates/{certificate}/deployments/{target}`.
pub fn deployment_name(certificate_id: &str, target_id: &str) -> String {
    format!("certificates/{certificate_id}/deployments/{target_id}")
}

/// Parses `certificates/{certificate}/deployments/{target}`.
pub fn parse_deployment_name(field: &str, name: &str) -> Result<(String, String), DomainError> {
    let bad = || {
        DomainError::invalid(
            field,
            format!("`{name}` is not a deployment name: expected `certificates/{{id}}/deployments/{{target}}`"),
        )
    };
    let (parent, target) = name.rsplit_once("/deployments/").ok_or_else(bad)?;
    let certificate = name::parse(field, Collection::Certificates, parent)?;
    name::validate_id(field, target)?;
    Ok((certificate.to_owned(), target.to_owned()))
}

/// A deployment as a caller reports it, by name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewDeployment {
    /// Optional; must agree with `version` and `target` when set.
    pub name: String,
    /// `certificates/{certificate}/versions/{version}`.
    pub version: String,
    /// `targets/{target}`.
    pub target: String,
    pub state: Option<DeploymentState>,
    pub served_fingerprint: String,
    pub message: String,
    pub deploy_time: Option<UnixTime>,
    pub verify_time: Option<UnixTime>,
    pub job: String,
}

pub const MAX_DEPLOYMENTS: usize = 1000;
pub const MAX_DEPLOYMENT_MESSAGE_LEN: usize = 4096;

/// A SHA-256 fingerprint in hex, returned in lower case; `None` if it is not one.
pub fn sha256_hex(text: &str) -> Option<String> {
    (text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())).then(|| text.to_ascii_lowercase())
}

impl NewDeployment {
    /// Checks one reported deployment; field names start with `prefix`. An
    /// installed deployment without a deploy_time was installed `now`, and a
    /// checked one without a verify_time was checked `now`.
    fn check(self, prefix: &str, now: UnixTime, v: &mut Violations) -> Option<Deployment> {
        let field = |f: &str| format!("{prefix}{f}");
        let version = name::parse_version(&field("version"), &self.version).map_err(|e| v.merge(Err(e))).ok();
        let target = name::parse(&field("target"), Collection::Targets, &self.target).map_err(|e| v.merge(Err(e))).ok();
        if self.state.is_none() {
            v.add(field("state"), "required");
        }
        let served_fingerprint = if self.served_fingerprint.is_empty() {
            String::new()
        } else {
            sha256_hex(&self.served_fingerprint).unwrap_or_else(|| {
                v.add(field("served_fingerprint"), "a SHA-256 fingerprint: 64 hex digits");
                String::new()
            })
        };
        v.check(self.message.len() <= MAX_DEPLOYMENT_MESSAGE_LEN, &field("message"), "at most 4096 characters");
        v.merge(name::parse_optional(&field("job"), Collection::Jobs, &self.job));
        let ((certificate_id, version), target_id, state) = (version?, target?.to_owned(), self.state?);
        if !self.name.is_empty() && self.name != deployment_name(&certificate_id, &target_id) {
            v.add(
                field("name"),
                format!(
                    "`{}` does not match the version and target: expected `{}`",
                    self.name,
                    deployment_name(&certificate_id, &target_id)
                ),
            );
        }
        Some(Deployment {
            certificate_id,
            target_id,
            version,
            state,
            served_fingerprint,
            message: self.message,
            deploy_time: self.deploy_time.or_else(|| state.installed().then_some(now)),
            verify_time: self.verify_time.or_else(|| state.checked().then_some(now)),
            update_time: now,
            job: self.job,
        })
    }
}

/// Checks a batch of reported deployments, each (certificate, target) at
/// most once; the result is in the order given.
pub fn deployments(reports: Vec<NewDeployment>, now: UnixTime) -> Result<Vec<Deployment>, DomainError> {
    let mut v = Violations::new();
    v.check(!reports.is_empty(), "deployments", "nothing to record");
    v.check(reports.len() <= MAX_DEPLOYMENTS, "deployments", "at most 1000 deployments per call");
    let mut out: Vec<Deployment> = Vec::with_capacity(reports.len());
    for (i, report) in reports.into_iter().enumerate() {
        let prefix = format!("deployments[{i}].");
        let Some(d) = report.check(&prefix, now, &mut v) else { continue };
        if let Some(j) = out.iter().position(|o| o.certificate_id == d.certificate_id && o.target_id == d.target_id) {
            v.add(format!("deployments[{i}]"), format!("repeats deployments[{j}]: {}", d.name()));
        }
        out.push(d);
    }
    v.into_result()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(version: &str, target: &str, state: DeploymentState) -> NewDeployment {
        NewDeployment { version: version.into(), target: target.into(), state: Some(state), ..Default::default() }
    }

    #[test]
    fn names() {
        assert_eq!(deployment_name("web", "edge-1"), "certificates/web/deployments/edge-1");
        assert_eq!(
            parse_deployment_name("n", "certificates/web/deployments/edge-1").unwrap(),
            ("web".to_owned(), "edge-1".to_owned())
        );
        assert!(parse_deployment_name("n", "certificates/web/versions/1").is_err());
        assert!(parse_deployment_name("n", "certificates/web/deployments/Edge").is_err());
        for state in DeploymentState::ALL {
            assert_eq!(DeploymentState::parse(state.as_str()), Some(state));
        }
        assert_eq!(DeploymentState::parse("nope"), None);
    }

    #[test]
    fn times_default_to_now_where_they_apply() {
        let now = 1_000;
        let check = |state: DeploymentState, deploy: Option<i64>, verify: Option<i64>| {
            let d = deployments(vec![report("certificates/web/versions/2", "targets/edge", state)], now).unwrap();
            assert_eq!((d[0].deploy_time, d[0].verify_time), (deploy, verify), "{state:?}");
            assert_eq!((d[0].certificate_id.as_str(), d[0].version, d[0].target_id.as_str()), ("web", 2, "edge"));
        };
        check(DeploymentState::Pending, None, None);
        check(DeploymentState::Deployed, Some(now), None);
        check(DeploymentState::Verified, Some(now), Some(now));
        check(DeploymentState::Mismatch, Some(now), Some(now));
        check(DeploymentState::Failed, None, None);
        let given = NewDeployment {
            deploy_time: Some(10),
            verify_time: Some(20),
            served_fingerprint: "AB".repeat(32),
            ..report("certificates/web/versions/2", "targets/edge", DeploymentState::Verified)
        };
        let d = deployments(vec![given], now).unwrap();
        assert_eq!((d[0].deploy_time, d[0].verify_time), (Some(10), Some(20)));
        assert_eq!(d[0].served_fingerprint, "ab".repeat(32));
    }

    #[test]
    fn refusals_name_their_fields() {
        let fields = |reports: Vec<NewDeployment>| match deployments(reports, 0) {
            Err(DomainError::InvalidArgument(v)) => v.into_iter().map(|f| f.field).collect::<Vec<_>>(),
            other => panic!("expected a refusal, got {other:?}"),
        };
        assert_eq!(fields(vec![]), ["deployments"]);
        let ok = report("certificates/web/versions/1", "targets/edge", DeploymentState::Deployed);
        assert_eq!(
            fields(vec![
                ok.clone(),
                NewDeployment { state: None, version: "certificates/web".into(), ..ok.clone() },
                NewDeployment {
                    served_fingerprint: "abc".into(),
                    job: "job/1".into(),
                    target: "targets/edge-2".into(),
                    ..ok.clone()
                },
                NewDeployment {
                    name: "certificates/web/deployments/other".into(),
                    target: "targets/edge-3".into(),
                    ..ok.clone()
                },
                NewDeployment { message: "x".repeat(5000), target: "agents/a".into(), ..ok.clone() },
                ok.clone(),
            ]),
            [
                "deployments[1].version",
                "deployments[1].state",
                "deployments[2].served_fingerprint",
                "deployments[2].job",
                "deployments[3].name",
                "deployments[4].target",
                "deployments[4].message",
                "deployments[5]",
            ]
        );
    }
}
