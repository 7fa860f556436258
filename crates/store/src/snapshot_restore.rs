//! Tables rebuilt from a snapshot's bytes one row at a time: each row is decoded and put in its
//! table before the next is read, and a task's spec is shared with its service's as soon as it
//! is read. Accepts the bytes `StoreSnapshot::decode` accepts and gives the state
//! `Tables::from_snapshot` gives from its result. Owns only that decoding; the field numbers
//! are `snapshot_bytes`'s.
//!
//! Why: decoding a whole `StoreSnapshot` first held every row twice at the peak — decoded, each
//! task with its own copy of its service's spec, and again in the tables being built. A new
//! manager installing a million-task snapshot peaked at twice the heap it ended with.

use crate::snapshot_bytes::{CLUSTERS, CONFIGS, NETWORKS, NODES, SECRETS, SERVICES, TASKS};
use crate::tables::Tables;
use prost::encoding::{decode_key, message, skip_field, DecodeContext};
use prost::{DecodeError, Message};

/// One row of type `T` at the front of `buf`, decoded as prost decodes a repeated field's
/// element.
fn row<T: Message + Default>(
    wire_type: prost::encoding::WireType,
    buf: &mut &[u8],
) -> Result<T, DecodeError> {
    let mut x = T::default();
    message::merge(wire_type, &mut x, buf, DecodeContext::default())?;
    Ok(x)
}

impl Tables {
    /// The state a snapshot's bytes hold (see the module doc).
    pub fn from_snapshot_bytes(mut buf: &[u8]) -> Result<Tables, DecodeError> {
        let mut t = Tables::default();
        while !buf.is_empty() {
            let (tag, wire_type) = decode_key(&mut buf)?;
            let b = &mut buf;
            match tag {
                NODES => {
                    t.nodes.put(row(wire_type, b)?);
                }
                SERVICES => {
                    t.services.put(row(wire_type, b)?);
                }
                TASKS => {
                    let mut x = row(wire_type, b)?;
                    // Services come first in a snapshot (field order): a task read after its
                    // service shares the spec it holds, as an applied one does.
                    t.share_task_spec(&mut x);
                    t.put_task(x);
                }
                CLUSTERS => {
                    t.clusters.put(row(wire_type, b)?);
                }
                SECRETS => {
                    t.secrets.put(row(wire_type, b)?);
                }
                CONFIGS => {
                    t.configs.put(row(wire_type, b)?);
                }
                NETWORKS => {
                    t.networks.put(row(wire_type, b)?);
                }
                _ => skip_field(wire_type, tag, b, DecodeContext::default())?,
            }
        }
        Ok(t)
    }
}
