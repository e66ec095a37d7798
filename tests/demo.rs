//! The README's first command on the bundled real sample: it pages on the real spikes and
//! stays quiet otherwise.

use spendpager::alert::Status;
use std::collections::BTreeMap;

#[test]
fn the_demo_pages_on_the_real_spikes_and_only_a_handful_of_times() {
    let dir = tempfile::tempdir().unwrap();
    let o = spendpager::demo::run_in(dir.path()).unwrap();
    assert_eq!(o.rows, 35_767);
    assert_eq!(o.tenants, 38);
    let pages: Vec<_> = o
        .report
        .notifications
        .iter()
        .filter(|a| a.status == Status::Firing)
        .collect();
    let new: Vec<_> = pages
        .iter()
        .filter(|a| a.started_at.as_deref() == Some(a.at.as_str()))
        .collect();
    assert!((5..=25).contains(&new.len()), "{} new incidents", new.len());
    let mut per_tenant: BTreeMap<&str, usize> = BTreeMap::new();
    for a in &pages {
        *per_tenant
            .entry(a.labels["tenant"].as_deref().unwrap())
            .or_default() += 1;
        assert!(!a.summary.is_empty());
        assert!(
            a.contributors.iter().any(|c| c.dimension == "feature"),
            "{}",
            a.summary
        );
    }
    // Not dozens per tenant: the spikiest tenant (l61, four rules) is paged at most eight
    // times in eleven days.
    assert!(per_tenant.values().all(|n| *n <= 8), "{per_tenant:?}");
    // Most of the 38 tenants are never paged.
    assert!(per_tenant.len() <= 12, "{per_tenant:?}");
    // The largest real spikes in the sample: l61's day of 25k on 2025-03-16, against a few
    // thousand a day before, and l157 jumping from about $31 a day to $906 on 2025-03-11.
    let paged = |tenant: &str, day: &str| {
        pages
            .iter()
            .any(|a| a.labels["tenant"].as_deref() == Some(tenant) && a.at.starts_with(day))
    };
    assert!(paged("l61", "2025-03-16"));
    assert!(paged("l157", "2025-03-11"));
    // A steady large tenant (l34 spends $1.2k-2.4k every day) is never paged.
    assert!(!per_tenant.contains_key("l34"), "{per_tenant:?}");
}
