//! Paged job listings for the API edge: page sizes and tokens (AIP-158,
//! `certctl_domain::page`) over the store's keyset queries.

use certctl_domain::job::Job;
use certctl_domain::name::{self, Collection};
use certctl_domain::{DomainError, page};

use crate::error::Result;
use crate::store::{JobCursor, JobFilter, JobQuery, Store};

/// One page and the token for the next (empty on the last page).
#[derive(Debug, Clone, PartialEq)]
pub struct JobPage {
    pub jobs: Vec<Job>,
    pub next_page_token: String,
}

/// A listing request as the caller gave it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListJobs {
    pub filter: JobFilter,
    pub newest_first: bool,
    /// 0 means the default; capped at the maximum; negative is refused.
    pub page_size: i32,
    pub page_token: String,
}

fn fingerprint(request: &ListJobs) -> String {
    let f = &request.filter;
    page::query_fingerprint(&[
        "jobs",
        f.state.map_or("", |s| s.as_str()),
        f.kind.map_or("", |k| k.as_str()),
        f.certificate.as_deref().unwrap_or(""),
        if request.newest_first { "desc" } else { "asc" },
    ])
}

impl ListJobs {
    /// The store query for this request's page. INVALID_ARGUMENT for a bad
    /// size, a bad certificate name, or a token from another query.
    pub fn query(&self) -> Result<JobQuery> {
        let limit = page::page_size(self.page_size)?;
        if let Some(certificate) = &self.filter.certificate {
            name::parse("filter.certificate", Collection::Certificates, certificate)?;
        }
        let after = match page::decode_token(&self.page_token, &fingerprint(self))? {
            None => None,
            Some(cursor) => {
                let (create_time, id): (i64, String) = serde_json::from_value(cursor)
                    .map_err(|_| DomainError::invalid("page_token", "not a page token issued by this server"))?;
                Some(JobCursor { create_time, id })
            }
        };
        Ok(JobQuery { filter: self.filter.clone(), newest_first: self.newest_first, after, limit })
    }

    /// Runs the request against `store`.
    pub async fn run<S: Store + ?Sized>(&self, store: &S) -> Result<JobPage> {
        let mut query = self.query()?;
        let limit = query.limit;
        // One row more than the page tells whether another page follows.
        query.limit += 1;
        let mut jobs = store.list(&query).await?;
        let more = jobs.len() as i64 > limit;
        jobs.truncate(limit as usize);
        let next_page_token = match jobs.last() {
            Some(last) if more => {
                page::encode_token(&fingerprint(self), serde_json::json!([last.create_time, last.id]))
            }
            _ => String::new(),
        };
        Ok(JobPage { jobs, next_page_token })
    }
}
