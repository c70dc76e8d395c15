//! Redis Clusters of a test's own, started here with `redis-server
//! --cluster-enabled yes` and `redis-cli --cluster create`, which a test
//! may reshard while it writes. (The shared cluster the test command
//! starts is in `stats`.)

use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;

use crate::processes::{Service, free_port, system_program};

/// A Redis Cluster of a test's own: masters on free ports, killed on drop.
#[derive(Debug)]
pub struct RedisCluster {
    masters: Vec<Service>,
    ports: Vec<u16>,
}

impl RedisCluster {
    /// Starts `masters` (at least three) servers in cluster mode and joins
    /// them into one cluster, the slots split evenly; returns once every
    /// node says the cluster is ok.
    pub async fn start(masters: usize) -> Self {
        let ports: Vec<u16> = (0..masters).map(|_| free_port()).collect();
        let mut servers = Vec::new();
        for &port in &ports {
            let args = [
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "{dir}/nodes.conf",
                "--dir",
                "{dir}",
                "--save",
                "",
                "--appendonly",
                "no",
            ]
            .map(str::to_owned)
            .to_vec();
            let server =
                Service::program("redis-server", system_program("redis-server"), port, args);
            server.wait_listening(Duration::from_secs(10)).await;
            servers.push(server);
        }
        let mut create = std::process::Command::new(system_program("redis-cli"));
        create.arg("--cluster").arg("create");
        for port in &ports {
            create.arg(format!("127.0.0.1:{port}"));
        }
        create.args(["--cluster-replicas", "0", "--cluster-yes"]);
        let output = tokio::task::spawn_blocking(move || create.output())
            .await
            .expect("redis-cli joins")
            .expect("redis-cli runs");
        assert!(
            output.status.success(),
            "redis-cli --cluster create: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let cluster = Self {
            masters: servers,
            ports,
        };
        cluster.wait_ok(Duration::from_secs(20)).await;
        cluster
    }

    /// Its nodes, comma-separated (as `REDIS_URL` takes them).
    pub fn urls(&self) -> String {
        self.ports
            .iter()
            .map(|port| format!("redis://127.0.0.1:{port}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The masters' ports.
    pub fn ports(&self) -> &[u16] {
        &self.ports
    }

    /// Waits until every node reports `cluster_state:ok` and agrees on who
    /// serves every slot.
    pub async fn wait_ok(&self, timeout: Duration) {
        let started = Instant::now();
        loop {
            let mut ok = true;
            for &port in &self.ports {
                let info: String = redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query_async(&mut connection(port).await)
                    .await
                    .unwrap_or_default();
                ok &= info.contains("cluster_state:ok");
            }
            if ok {
                return;
            }
            assert!(
                started.elapsed() < timeout,
                "the cluster is not ok after {timeout:?}: {:?}",
                self.masters.iter().map(Service::output).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The port of the master serving `slot`, as the node on `asked` sees it.
    pub async fn owner(&self, slot: u16, asked: u16) -> u16 {
        let slots: Vec<redis::Value> = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query_async(&mut connection(asked).await)
            .await
            .expect("CLUSTER SLOTS");
        for range in slots {
            let redis::Value::Array(range) = range else {
                continue;
            };
            let number = |value: &redis::Value| match value {
                redis::Value::Int(n) => *n,
                _ => -1,
            };
            let (Some(start), Some(end), Some(redis::Value::Array(master))) =
                (range.first(), range.get(1), range.get(2))
            else {
                continue;
            };
            if (number(start)..=number(end)).contains(&i64::from(slot)) {
                return u16::try_from(number(&master[1])).expect("a port");
            }
        }
        panic!("slot {slot} is served by no master")
    }

    /// Moves `slot` from its master to the master on `to`, as
    /// `redis-cli --cluster reshard` does (IMPORTING, MIGRATING, MIGRATE of
    /// its keys `keys_per_step` at a time with `pause` between steps, then
    /// the slot given to its new master on every node). Writers see ASK,
    /// TRYAGAIN and at the end MOVED. Returns how many keys were moved.
    pub async fn move_slot(
        &self,
        slot: u16,
        to: u16,
        keys_per_step: usize,
        pause: Duration,
    ) -> usize {
        let from = self.owner(slot, self.ports[0]).await;
        assert_ne!(from, to, "slot {slot} is already on {to}");
        let (mut source, mut target) = (connection(from).await, connection(to).await);
        let source_id = my_id(&mut source).await;
        let target_id = my_id(&mut target).await;
        setslot(&mut target, slot, "IMPORTING", &source_id).await;
        setslot(&mut source, slot, "MIGRATING", &target_id).await;
        let mut moved = 0;
        loop {
            let keys: Vec<String> = redis::cmd("CLUSTER")
                .arg("GETKEYSINSLOT")
                .arg(slot)
                .arg(keys_per_step)
                .query_async(&mut source)
                .await
                .expect("GETKEYSINSLOT");
            if keys.is_empty() {
                break;
            }
            moved += keys.len();
            redis::cmd("MIGRATE")
                .arg("127.0.0.1")
                .arg(to)
                .arg("")
                .arg(0)
                .arg(5000)
                .arg("KEYS")
                .arg(&keys)
                .query_async::<()>(&mut source)
                .await
                .expect("MIGRATE");
            tokio::time::sleep(pause).await;
        }
        // The new owner first, as redis-cli does: it then answers for the
        // slot while the others learn of it.
        setslot(&mut target, slot, "NODE", &target_id).await;
        setslot(&mut source, slot, "NODE", &target_id).await;
        for &port in &self.ports {
            if port != from && port != to {
                setslot(&mut connection(port).await, slot, "NODE", &target_id).await;
            }
        }
        self.wait_ok(Duration::from_secs(20)).await;
        moved
    }
}

/// The hash slot of `key` (its `{tag}` when it has one), as `node` computes it.
pub async fn slot_of(port: u16, key: &str) -> u16 {
    redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(key)
        .query_async(&mut connection(port).await)
        .await
        .expect("CLUSTER KEYSLOT")
}

async fn connection(port: u16) -> MultiplexedConnection {
    redis::Client::open(format!("redis://127.0.0.1:{port}"))
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("a cluster node answers")
}

async fn my_id(connection: &mut MultiplexedConnection) -> String {
    redis::cmd("CLUSTER")
        .arg("MYID")
        .query_async(connection)
        .await
        .expect("CLUSTER MYID")
}

async fn setslot(connection: &mut MultiplexedConnection, slot: u16, state: &str, node: &str) {
    redis::cmd("CLUSTER")
        .arg("SETSLOT")
        .arg(slot)
        .arg(state)
        .arg(node)
        .query_async::<()>(connection)
        .await
        .unwrap_or_else(|error| panic!("CLUSTER SETSLOT {slot} {state}: {error}"));
}
