//! When a certificate version is renewed.
//!
//! The time is the earliest of the policy's lifetime-fraction point and its
//! fixed lead time, clamped into a safe part of the validity window, then
//! moved earlier by a jitter derived from the certificate's name and version.
//! The jitter is a hash, not a random draw, so a re-scan computes the same
//! time (and the same idempotency key finds the same job), while ten thousand
//! certificates issued in one batch still renew spread over a window instead
//! of hitting the CA in the same second.

use sha2::{Digest, Sha256};

use crate::UnixTime;
use crate::inventory::{DEFAULT_RENEW_BEFORE_FRACTION, RenewalPolicy};
use crate::name::version_name;

/// The lower clamp: a version is used for at least this share of its lifetime
/// before it is renewed. Without it a lead time longer than the lifetime
/// (a 30-day `renew_before` on 7-day certificates) would make every new
/// version due at once, and the scheduler would renew in a tight loop.
pub const MIN_USED_FRACTION: f64 = 0.10;
/// The upper clamp keeps at least `min(MAX_SAFETY_MARGIN_SECS, 10 % of the
/// lifetime)` between the renewal and the expiry: an hour is room for a few
/// retries, an issuance and a deployment, and on certificates of minutes the
/// 10 % keeps the margin proportional instead of larger than the lifetime.
pub const MAX_SAFETY_MARGIN_SECS: i64 = 3600;
pub const SAFETY_MARGIN_FRACTION: f64 = 0.10;
/// The jitter window: up to this share of the lifetime...
pub const JITTER_FRACTION: f64 = 0.05;
/// ...and never more than six hours, so a 2-year certificate is not renewed
/// weeks before its policy says.
pub const MAX_JITTER_SECS: i64 = 6 * 3600;

/// The renewal time and how it was reached, for the GUI's "why now?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenewalTiming {
    /// When to renew.
    pub at: UnixTime,
    /// The policy's time after clamping, before the jitter.
    pub unjittered: UnixTime,
    /// The clamp bounds: `earliest ≤ at ≤ unjittered ≤ latest`.
    pub earliest: UnixTime,
    pub latest: UnixTime,
}

/// `timing(...).at`.
pub fn renewal_time(
    policy: &RenewalPolicy,
    certificate_id: &str,
    version: i64,
    not_before: UnixTime,
    not_after: UnixTime,
) -> UnixTime {
    timing(policy, certificate_id, version, not_before, not_after).at
}

/// When version `version` of `certificates/{certificate_id}`, valid over
/// `[not_before, not_after]`, should be renewed under `policy`.
///
/// `renew_before_lifetime_fraction` is the share of the lifetime that remains
/// at renewal (⅓ by default, so renewal comes after ⅔ of the lifetime, as in
/// cert-manager); `renew_before_secs` is a fixed lead before expiry. With
/// both, the earlier time wins; with neither, the default fraction applies.
/// A version whose validity is empty or inverted is due at once.
pub fn timing(
    policy: &RenewalPolicy,
    certificate_id: &str,
    version: i64,
    not_before: UnixTime,
    not_after: UnixTime,
) -> RenewalTiming {
    let lifetime = not_after.saturating_sub(not_before);
    if lifetime <= 0 {
        let at = not_before.min(not_after);
        return RenewalTiming { at, unjittered: at, earliest: at, latest: at };
    }
    let share = |f: f64| (lifetime as f64 * f).round() as i64;
    let fraction = match (policy.renew_before_lifetime_fraction, policy.renew_before_secs) {
        (None, None) => Some(DEFAULT_RENEW_BEFORE_FRACTION),
        (fraction, _) => fraction,
    };
    let by_fraction = fraction.map(|f| not_after - share(f));
    let by_lead = policy.renew_before_secs.map(|lead| not_after.saturating_sub(lead));
    let policy_time = by_fraction.into_iter().chain(by_lead).min().unwrap_or(not_after);

    let earliest = not_before + share(MIN_USED_FRACTION);
    let latest = not_after - share(SAFETY_MARGIN_FRACTION).min(MAX_SAFETY_MARGIN_SECS);
    let unjittered = policy_time.clamp(earliest, latest);

    // Shrink the window to the room above the lower clamp rather than piling
    // the jittered times up on it.
    let window = share(JITTER_FRACTION).min(MAX_JITTER_SECS).min(unjittered - earliest);
    let jitter = (jitter_hash(certificate_id, version) % (window as u64 + 1)) as i64;
    RenewalTiming { at: unjittered - jitter, unjittered, earliest, latest }
}

/// The idempotency key of the renewal job for one version: a re-scan that
/// finds the version due again enqueues nothing new.
pub fn renewal_idempotency_key(certificate_id: &str, version: i64) -> String {
    format!("renewal:{}", version_name(certificate_id, version))
}

fn jitter_hash(certificate_id: &str, version: i64) -> u64 {
    let mut hasher = Sha256::new();
    hasher.update(certificate_id.as_bytes());
    hasher.update([0]);
    hasher.update(version.to_be_bytes());
    let digest = hasher.finalize();
    let mut word = [0_u8; 8];
    word.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(word)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::DAY;

    const HOUR: i64 = 3600;
    const NB: i64 = 1_700_000_000;

    fn policy(fraction: Option<f64>, lead: Option<i64>) -> RenewalPolicy {
        RenewalPolicy { renew_before_lifetime_fraction: fraction, renew_before_secs: lead, ..Default::default() }
    }

    /// (policy, lifetime) → the unjittered time and the jitter window, as
    /// offsets from not_before; `at` must fall inside `[unjittered - window, unjittered]`.
    #[test]
    fn timing_table() {
        let third = Some(1.0 / 3.0);
        let check = |p: RenewalPolicy, lifetime: i64, unjittered: i64, window: i64| {
            let t = timing(&p, "web", 1, NB, NB + lifetime);
            let label = format!("{:?}/{:?} over {lifetime} s", p.renew_before_lifetime_fraction, p.renew_before_secs);
            assert_eq!(t.unjittered - NB, unjittered, "unjittered, {label}");
            assert!(t.at <= t.unjittered && t.at >= t.unjittered - window, "{t:?} outside the window, {label}");
            assert!(t.at >= t.earliest && t.unjittered <= t.latest, "{t:?} outside the clamp, {label}");
        };
        // 90 days, default: after 60 days; the 5 % window (4.5 days) is capped at 6 h.
        check(RenewalPolicy::default(), 90 * DAY, 60 * DAY, 6 * HOUR);
        check(policy(None, None), 90 * DAY, 60 * DAY, 6 * HOUR);
        // Five-minute test certificates: after 200 s, jitter up to 15 s (5 %).
        check(policy(third, None), 300, 200, 15);
        // One minute: 40 s, 3 s of jitter.
        check(policy(third, None), 60, 40, 3);
        // A year with only a 30-day lead.
        check(policy(None, Some(30 * DAY)), 365 * DAY, 335 * DAY, 6 * HOUR);
        // Two years with a fraction of 0.1: 657 days, 6 h.
        check(policy(Some(0.1), None), 730 * DAY, 657 * DAY, 6 * HOUR);
        // Both: the earlier wins, whichever it is.
        check(policy(third, Some(10 * DAY)), 90 * DAY, 60 * DAY, 6 * HOUR);
        check(policy(Some(0.1), Some(30 * DAY)), 90 * DAY, 60 * DAY, 6 * HOUR);
        // Five minutes with a one-minute lead and a third: the third (200 s) is earlier.
        check(policy(third, Some(60)), 300, 200, 15);
        // A lead longer than the lifetime: clamped to 10 % used, no room for jitter.
        check(policy(None, Some(400 * DAY)), 90 * DAY, 9 * DAY, 0);
        check(policy(None, Some(3600)), 300, 30, 0);
        // A lead of a minute on 90 days: clamped to an hour before expiry.
        check(policy(None, Some(60)), 90 * DAY, 90 * DAY - HOUR, 6 * HOUR);
        // ...and to 10 % before expiry on a five-minute certificate.
        check(policy(None, Some(1)), 300, 270, 15);
        // A lead just above the lower clamp: the window shrinks to the room left.
        check(policy(None, Some(90 * DAY - 9 * DAY - 100)), 90 * DAY, 9 * DAY + 100, 100);
    }

    #[test]
    fn clamps() {
        let t = timing(&policy(None, Some(400 * DAY)), "web", 1, NB, NB + 7 * DAY);
        assert_eq!((t.at, t.earliest), (NB + 7 * DAY / 10, NB + 7 * DAY / 10), "10 % of 7 days used");
        let t = timing(&policy(None, Some(1)), "web", 1, NB, NB + 365 * DAY);
        assert_eq!(t.latest, NB + 365 * DAY - HOUR);
        let t = timing(&policy(None, Some(1)), "web", 1, NB, NB + 300);
        assert_eq!(t.latest, NB + 270);
    }

    #[test]
    fn broken_validity_is_due_at_once() {
        let t = timing(&RenewalPolicy::default(), "web", 1, NB, NB);
        assert_eq!(t.at, NB);
        let t = timing(&RenewalPolicy::default(), "web", 1, NB, NB - 10);
        assert_eq!(t.at, NB - 10);
    }

    #[test]
    fn jitter_is_deterministic_per_version() {
        let p = RenewalPolicy::default();
        let a = renewal_time(&p, "web", 1, NB, NB + 90 * DAY);
        assert_eq!(a, renewal_time(&p, "web", 1, NB, NB + 90 * DAY), "a re-scan finds the same time");
        let others: Vec<i64> = (2..10).map(|v| renewal_time(&p, "web", v, NB, NB + 90 * DAY)).collect();
        assert!(others.iter().any(|t| *t != a), "other versions land elsewhere: {a} {others:?}");
        // The id and version are separated in the hash: "web1"/v1 is not "web"/v11.
        assert_ne!(jitter_hash("web1", 1), jitter_hash("web", 11));
    }

    #[test]
    fn ten_thousand_simultaneous_certificates_spread_over_the_window() {
        let p = RenewalPolicy::default();
        let times: Vec<i64> =
            (0..10_000).map(|i| renewal_time(&p, &format!("service-{i}.example.com"), 1, NB, NB + 90 * DAY)).collect();
        let top = NB + 60 * DAY;
        let window = 6 * HOUR;
        assert!(times.iter().all(|t| (top - window..=top).contains(t)));
        // 24 buckets of 15 minutes: each holds about 417; allow ±25 %.
        let mut buckets = [0_u32; 24];
        for t in &times {
            buckets[(((top - t) * 24) / (window + 1)) as usize] += 1;
        }
        assert!(buckets.iter().all(|n| (312..=521).contains(n)), "uneven spread: {buckets:?}");
        // No second sees more than a handful: the CA is not hit in a burst.
        let mut per_second = std::collections::HashMap::new();
        for t in &times {
            *per_second.entry(*t).or_insert(0_u32) += 1;
        }
        let busiest = per_second.values().copied().max().unwrap_or(0);
        assert!(busiest <= 6, "{busiest} renewals in one second");
    }

    #[test]
    fn five_minute_certificates_spread_too() {
        let p = RenewalPolicy::default();
        let times: std::collections::BTreeSet<i64> =
            (0..1000).map(|i| renewal_time(&p, &format!("c{i}"), 1, NB, NB + 300)).collect();
        assert_eq!(times, (NB + 185..=NB + 200).collect(), "every second of the 15 s window is used");
    }

    #[test]
    fn idempotency_keys_name_the_version() {
        assert_eq!(renewal_idempotency_key("web", 3), "renewal:certificates/web/versions/3");
    }
}
