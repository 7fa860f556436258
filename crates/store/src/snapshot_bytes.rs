//! A snapshot's bytes encoded straight from the tables: the same bytes as
//! `Tables::to_snapshot().encode_to_vec()`, without first copying every object into a
//! `StoreSnapshot`. Owns only that encoding; what a snapshot holds is `StoreSnapshot`'s
//! definition (types.proto), whose field numbers are repeated here.
//!
//! Why: the copy was the largest cost of a snapshot. At 100,000 tasks the manager's heap holds
//! ~2.3 KB per task and the encoded state ~230 B, so copying the tables to encode them took
//! about ten times the memory of the bytes themselves, on the path that applies entries.

use crate::item::StoreItem;
use crate::tables::{Table, Tables};
use prost::encoding::message;
use prost::Message;

/// `StoreSnapshot`'s field numbers.
pub(crate) const NODES: u32 = 1;
pub(crate) const SERVICES: u32 = 2;
pub(crate) const TASKS: u32 = 3;
pub(crate) const CLUSTERS: u32 = 4;
pub(crate) const SECRETS: u32 = 5;
pub(crate) const CONFIGS: u32 = 6;
pub(crate) const NETWORKS: u32 = 7;

/// A first guess at the size, so the buffer rarely grows (each growth copies it): a task
/// encodes to ~230 B.
const BYTES_PER_ROW: usize = 256;

impl Tables {
    /// The prost encoding of this state as a `StoreSnapshot`, fields in number order and rows
    /// in ID order, as prost itself writes them.
    pub fn encode_snapshot(&self) -> Vec<u8> {
        let rows = self.nodes.len()
            + self.services.len()
            + self.tasks.len()
            + self.clusters.len()
            + self.secrets.len()
            + self.configs.len()
            + self.networks.len();
        let mut buf = Vec::with_capacity(rows.saturating_mul(BYTES_PER_ROW));
        encode_rows(NODES, &self.nodes, &mut buf);
        encode_rows(SERVICES, &self.services, &mut buf);
        encode_rows(TASKS, &self.tasks, &mut buf);
        encode_rows(CLUSTERS, &self.clusters, &mut buf);
        encode_rows(SECRETS, &self.secrets, &mut buf);
        encode_rows(CONFIGS, &self.configs, &mut buf);
        encode_rows(NETWORKS, &self.networks, &mut buf);
        buf
    }
}

/// One repeated field: each row as a length-delimited message under `field`.
fn encode_rows<T: StoreItem + Message>(field: u32, table: &Table<T>, buf: &mut Vec<u8>) {
    for row in table.iter() {
        message::encode(field, row, buf);
    }
}
