//! Group commit on a standalone Redis. Outcome batches that arrive while
//! earlier ones are being written wait in a queue; each script then takes
//! what has queued (up to a bound on its size), checks every batch id,
//! merges the batches' increments per connector, bucket and field, and
//! applies them. Under load many nodes report the same busy connectors, so
//! one HINCRBY carries the increments of many batches, and the fixed cost of
//! a script (round trip, dedupe, tombstone check) is paid once per group.
//! When idle a batch is written at once, alone.
//!
//! Exactly once still holds per batch: the script writes nothing if any of
//! its batch ids was seen before and returns which; those batches are
//! answered as duplicates and the rest of the group is merged again and
//! re-run. A batch id twice in one group counts once.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use tokio::sync::{mpsc, oneshot};

use super::CounterError;
use super::apply_script::{ApplyScript, Part, PartWrite, Written};
use super::connection::RedisConnection;
use eventconnectors_proto::limits::RECENT_FAILURES;

use crate::batch::{Applied, ConnectorBatch, Name};
use crate::{metrics, named_lists};

/// Batches waiting to be written before new ones wait for room.
const QUEUE: usize = 1024;
/// Most batches in one script.
const MAX_GROUP_BATCHES: usize = 64;
/// Most increments in one script (1-2 µs each in Redis, so a script holds
/// it for a few milliseconds at most): reads interleave between scripts.
const MAX_GROUP_INCREMENTS: usize = 2048;
/// Scripts sent before the previous one's reply: the next group is already
/// in Redis's socket buffer when the current one ends.
const GROUPS_IN_FLIGHT: usize = 2;

/// One batch waiting for its group.
struct Job {
    batch_id: String,
    parts: Vec<ConnectorBatch>,
    reply: oneshot::Sender<Result<Vec<Applied>, CounterError>>,
}

impl Job {
    fn increments(&self) -> usize {
        self.parts
            .iter()
            .flat_map(|part| &part.writes)
            .map(|write| write.fields.len())
            .sum()
    }
}

/// Where the writer sends its scripts.
struct Target {
    connection: RedisConnection,
    script: ApplyScript,
    batches_key: String,
}

/// Hands batches to the group writer task.
#[derive(Debug, Clone)]
pub(super) struct GroupCommit {
    jobs: mpsc::Sender<Job>,
}

impl GroupCommit {
    /// Starts the writer task on the current runtime; it ends when every
    /// handle is dropped, after writing what was queued.
    pub(super) fn start(connection: RedisConnection, script: ApplyScript) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE);
        let target = Arc::new(Target {
            connection,
            batches_key: script.batches_key(),
            script,
        });
        tokio::spawn(write_groups(queue, target));
        Self { jobs }
    }

    /// Applies `parts` of batch `batch_id` at most once, each part unless
    /// its connector is tombstoned; answers once its group is written.
    pub(super) async fn apply(
        &self,
        batch_id: &str,
        parts: Vec<ConnectorBatch>,
    ) -> Result<Vec<Applied>, CounterError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            batch_id: batch_id.to_owned(),
            parts,
            reply,
        };
        self.jobs
            .send(job)
            .await
            .map_err(|_| CounterError::WriterStopped)?;
        answer.await.map_err(|_| CounterError::WriterStopped)?
    }
}

/// Takes what has queued into groups, with up to [`GROUPS_IN_FLIGHT`]
/// scripts outstanding, each written by a task of its own.
async fn write_groups(mut queue: mpsc::Receiver<Job>, target: Arc<Target>) {
    let mut in_flight = FuturesUnordered::new();
    // A job that did not fit the group before it starts the next one.
    let mut carried: Option<Job> = None;
    loop {
        tokio::select! {
            biased;
            Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                if let Err(error) = done {
                    // Its batches get WriterStopped and are re-sent; the
                    // writer goes on with the next groups.
                    tracing::error!(%error, "a group commit failed");
                }
            }
            job = async {
                match carried.take() {
                    Some(job) => Some(job),
                    None => queue.recv().await,
                }
            }, if in_flight.len() < GROUPS_IN_FLIGHT => {
                let Some(first) = job else { break };
                let mut increments = first.increments();
                let mut group = vec![first];
                while group.len() < MAX_GROUP_BATCHES {
                    let Ok(job) = queue.try_recv() else { break };
                    increments += job.increments();
                    if increments > MAX_GROUP_INCREMENTS {
                        carried = Some(job);
                        break;
                    }
                    group.push(job);
                }
                // Its own task: a panic there fails only its batches.
                in_flight.push(tokio::spawn(commit(Arc::clone(&target), group)));
            }
        }
    }
    while in_flight.next().await.is_some() {}
}

/// Writes one group and answers each of its batches.
async fn commit(target: Arc<Target>, mut group: Vec<Job>) {
    metrics::write_group(group.len());
    // A batch id twice in the group: the later copies are answered with the
    // first's fate (a duplicate once it is applied).
    let mut ids = std::collections::HashSet::new();
    let copies: Vec<Job> = group
        .extract_if(.., |job| !ids.insert(job.batch_id.clone()))
        .collect();
    let failed = loop {
        if group.is_empty() {
            break None;
        }
        let merge = merge(&group);
        let written = run(&target, &group, &merge.parts).await;
        let index = merge.index;
        match written {
            Ok(Written::Seen(seen)) => {
                // Seen before: answered now; the rest are merged again.
                let mut position = 0;
                let is_seen = |_: &mut Job| {
                    position += 1;
                    seen.contains(&position)
                };
                for job in group.extract_if(.., is_seen) {
                    let _ = job
                        .reply
                        .send(Ok(vec![Applied::Duplicate; job.parts.len()]));
                }
            }
            Ok(Written::Applied(statuses)) => {
                let answers: Vec<Vec<Applied>> = group
                    .iter()
                    .map(|job| {
                        let status = |part: &ConnectorBatch| {
                            index
                                .get(part.connector_id.as_str())
                                .and_then(|at| statuses.get(*at))
                                .copied()
                                .unwrap_or(Applied::Applied)
                        };
                        job.parts.iter().map(status).collect()
                    })
                    .collect();
                drop(index);
                for (job, applied) in group.into_iter().zip(answers) {
                    let _ = job.reply.send(Ok(applied));
                }
                break None;
            }
            Err(error) => {
                let error = Arc::new(error);
                for job in group {
                    let _ = job
                        .reply
                        .send(Err(CounterError::Shared(Arc::clone(&error))));
                }
                break Some(error);
            }
        }
    };
    for copy in copies {
        let answer = match &failed {
            None => Ok(vec![Applied::Duplicate; copy.parts.len()]),
            Some(error) => Err(CounterError::Shared(Arc::clone(error))),
        };
        let _ = copy.reply.send(answer);
    }
}

/// The group's parts merged per connector, and where each connector is.
struct Merge<'a> {
    parts: Vec<Part<'a>>,
    index: HashMap<&'a str, usize, foldhash::fast::RandomState>,
}

fn merge(group: &[Job]) -> Merge<'_> {
    let mut parts: Vec<Part<'_>> = Vec::new();
    let mut index: HashMap<&str, usize, foldhash::fast::RandomState> = HashMap::default();
    let mut lists = named_lists::Index::default();
    for part in group.iter().flat_map(|job| &job.parts) {
        let Some(&at) = index.get(part.connector_id.as_str()) else {
            index.insert(&part.connector_id, parts.len());
            parts.push(Part::of(part));
            continue;
        };
        let merged = &mut parts[at];
        for write in &part.writes {
            let Some(w) = merged
                .writes
                .iter()
                .position(|m| *m.bucket == *write.bucket)
            else {
                merged.writes.push(PartWrite {
                    bucket: &write.bucket,
                    expire_at: write.expire_at,
                    fields: Cow::Borrowed(&write.fields),
                });
                continue;
            };
            let into = &mut merged.writes[w].fields;
            if let Cow::Borrowed(fields) = into {
                named_lists::index_all(fields, (at, w), &mut lists);
            }
            let fields = into.to_mut();
            for (field, by) in &write.fields {
                named_lists::add(fields, field, *by, (at, w), &mut lists);
            }
        }
        if !part.failures.is_empty() {
            // Only the newest are kept anyway.
            let failures = merged.failures.to_mut();
            failures.extend(part.failures.iter().cloned());
            let over = failures.len().saturating_sub(RECENT_FAILURES);
            failures.drain(..over);
        }
        let slot = (at, named_lists::SAMPLES);
        for (field, message) in &part.samples {
            if let Cow::Borrowed(samples) = &merged.samples {
                named_lists::index_all(samples, slot, &mut lists);
            }
            let samples = merged.samples.to_mut();
            match named_lists::position(samples, field, slot, &lists) {
                Some(kept) => samples[kept].1.clone_from(message),
                None => {
                    samples.push((Name::clone(field), message.clone()));
                    named_lists::pushed(samples, slot, &mut lists);
                }
            }
        }
    }
    Merge { parts, index }
}

async fn run(
    target: &Target,
    group: &[Job],
    parts: &[Part<'_>],
) -> Result<Written, redis::RedisError> {
    let ids: Vec<&str> = group.iter().map(|job| job.batch_id.as_str()).collect();
    let mut connection = target.connection.clone();
    target
        .script
        .run(&mut connection, &target.batches_key, &ids, parts)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::BucketWrite;

    fn job(batch: usize, connectors: &[&str], groups: usize) -> Job {
        let fields: Vec<(Name, i64)> = (0..groups)
            .map(|g| (Name::from(format!("g{g}")), 1))
            .collect();
        Job {
            batch_id: format!("b{batch}"),
            parts: connectors
                .iter()
                .map(|connector| ConnectorBatch {
                    connector_id: (*connector).to_owned(),
                    writes: vec![
                        BucketWrite {
                            bucket: Name::from("h:2026112917"),
                            fields: fields.clone(),
                            expire_at: 1,
                        },
                        BucketWrite {
                            bucket: Name::from(format!("h:20261129{}", 18 + batch % 2)),
                            fields: fields.clone(),
                            expire_at: 2,
                        },
                    ],
                    samples: vec![(Name::from("g0"), format!("from b{batch}"))],
                    failures: vec![format!("f{batch}").into_bytes()],
                })
                .collect(),
            reply: oneshot::channel().0,
        }
    }

    #[test]
    fn merging_sums_per_connector_bucket_and_field_and_keeps_the_last_sample() {
        // Long field lists (40 > the linear search), some connectors shared.
        let group = vec![
            job(0, &["a", "b"], 40),
            job(1, &["b", "c"], 40),
            job(2, &["b"], 40),
        ];
        let merge = merge(&group);
        let connectors: Vec<&str> = merge.parts.iter().map(|m| m.connector_id).collect();
        assert_eq!(connectors, ["a", "b", "c"]);
        let b = &merge.parts[merge.index["b"]];
        let buckets: Vec<&str> = b.writes.iter().map(|w| w.bucket).collect();
        assert_eq!(buckets, ["h:2026112917", "h:2026112918", "h:2026112919"]);
        assert!(b.writes[0].fields.iter().all(|(_, sum)| *sum == 3));
        assert!(
            b.writes[1].fields.iter().all(|(_, sum)| *sum == 2),
            "b0 and b2"
        );
        assert!(b.writes[2].fields.iter().all(|(_, sum)| *sum == 1));
        assert_eq!(b.writes[0].fields.len(), 40);
        assert_eq!(&*b.samples, [(Name::from("g0"), "from b2".to_owned())]);
        assert_eq!(
            &*b.failures,
            [b"f0".to_vec(), b"f1".to_vec(), b"f2".to_vec()],
            "failures of every batch, oldest first"
        );
        let a = &merge.parts[merge.index["a"]];
        assert!(
            matches!(a.writes[0].fields, Cow::Borrowed(_)),
            "alone: not copied"
        );
    }
}
