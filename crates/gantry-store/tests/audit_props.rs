//! The audit trail's contract on random batches: however the records of several runs are split
//! into commits (some of them carrying other writes, so both write paths are taken), each run's
//! trail is its records in the order they were appended, every record has a seq of its own, and
//! a record committed later has a larger seq.

use common::{Backend, Place};
use gantry_engine::ports::*;
use proptest::prelude::*;

mod common;

const RUNS: usize = 3;

fn record(run: usize, k: usize) -> AuditRecord {
    AuditRecord {
        seq: 0,
        at_ms: k as i64,
        trace_id: format!("trace-{run}"),
        run_id: format!("run-{run}"),
        job: (!k.is_multiple_of(4)).then(|| format!("job-{k}")),
        attempt: (!k.is_multiple_of(3)).then_some(k as u32),
        from: k.is_multiple_of(2).then(|| "queued".to_string()),
        to: "running".into(),
        note: k
            .is_multiple_of(5)
            .then(|| format!("note {k}: \"quoted\"\n")),
    }
}

/// Appends `appends` (per record: its run, whether a commit follows it, whether its batch also
/// renews a lease, which takes the batch off the single-statement path) and checks the trails.
fn check(backend: Backend, appends: &[(usize, bool, bool)]) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // SQLite: a fresh file per case. PostgreSQL: one database for every case (making one
        // costs a checkpoint), emptied before each; its audit sequence carries on. (A static is
        // never dropped: the database goes with the test cluster.)
        static PG: std::sync::OnceLock<Place> = std::sync::OnceLock::new();
        let sqlite;
        let store = match backend {
            Backend::Sqlite => {
                sqlite = Place::new(backend);
                sqlite.store().await
            }
            Backend::Postgres => {
                let place = PG.get_or_init(|| Place::new(backend));
                let url = &place.pg.as_ref().unwrap().url;
                let store = gantry_store::PgStore::connect(url).await.unwrap();
                common::pg::psql(url, "TRUNCATE runs, audit_chunks, locks CASCADE").unwrap();
                std::sync::Arc::new(store) as std::sync::Arc<dyn Store>
            }
        };
        let mut sent: Vec<Vec<AuditRecord>> = vec![Vec::new(); RUNS];
        let mut commit_of: std::collections::HashMap<i64, usize> = Default::default();
        let mut batch = Vec::new();
        let mut commits = 0;
        for (k, &(run, cut, lease)) in appends.iter().enumerate() {
            let r = record(run, k);
            sent[run].push(r.clone());
            commit_of.insert(r.at_ms, commits);
            batch.push(Write::Audit(r));
            if lease {
                batch.push(Write::RenewLeases {
                    names: vec!["run:x".into()],
                    holder: "h".into(),
                    expires_at_ms: k as i64,
                });
            }
            if cut || k + 1 == appends.len() {
                store.commit(&batch).await.unwrap();
                batch.clear();
                commits += 1;
            }
        }
        let mut seqs = Vec::new();
        for (run, want) in sent.iter().enumerate() {
            let trail = store.audit_trail(&format!("run-{run}")).await.unwrap();
            let got: Vec<AuditRecord> = trail
                .iter()
                .map(|a| AuditRecord {
                    seq: 0,
                    ..a.clone()
                })
                .collect();
            prop_assert_eq!(&got, want);
            seqs.extend(trail.iter().map(|a| (a.seq, commit_of[&a.at_ms])));
        }
        seqs.sort();
        prop_assert!(
            seqs.windows(2).all(|w| w[0].0 < w[1].0),
            "a seq handed out twice: {:?}",
            seqs
        );
        prop_assert!(
            seqs.windows(2).all(|w| w[0].1 <= w[1].1),
            "a later commit's record has a smaller seq: {:?}",
            seqs
        );
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]
    #[test]
    fn every_record_comes_back_in_order_with_a_seq_of_its_own_sqlite(
        appends in prop::collection::vec((0..RUNS, any::<bool>(), any::<bool>()), 1..60)
    ) {
        check(Backend::Sqlite, &appends)?;
    }

    #[test]
    fn every_record_comes_back_in_order_with_a_seq_of_its_own_postgres(
        appends in prop::collection::vec((0..RUNS, any::<bool>(), any::<bool>()), 1..60)
    ) {
        check(Backend::Postgres, &appends)?;
    }
}
