//! The channels behind each agent's server streams (session, assignments, networks): what a
//! stream's task sends, boxed, and the tonic stream that unboxes it. Owns no state.
//!
//! Why boxed: tokio's mpsc allocates its first block of 32 slots when the channel is made,
//! whatever its capacity, and a slot is as large as the message. A `SessionMessage` holds a
//! whole `Node` inline (584 bytes with its `Result`), so every connected node cost 18.7 KB
//! before a message was sent; boxed, a slot is one pointer.

use std::pin::Pin;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;
use tonic::Status;

/// What a stream's task sends into.
pub(crate) type Sender<T> = mpsc::Sender<Box<T>>;

/// A server stream as tonic takes it.
pub(crate) type Stream<T> = Pin<Box<dyn tokio_stream::Stream<Item = Result<T, Status>> + Send>>;

/// A channel of `capacity` messages and the stream that hands them to tonic.
pub(crate) fn channel<T: Send + 'static>(capacity: usize) -> (Sender<T>, Stream<T>) {
    let (tx, rx) = mpsc::channel::<Box<T>>(capacity);
    let stream = ReceiverStream::new(rx).map(|m| Ok(*m));
    (tx, Box::pin(stream))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use swarm_api::SessionMessage;

    #[tokio::test]
    async fn messages_arrive_unboxed_in_order() {
        let (tx, mut rx) = channel::<SessionMessage>(4);
        for id in ["a", "b"] {
            let m = SessionMessage {
                session_id: id.into(),
                ..Default::default()
            };
            tx.send(Box::new(m)).await.unwrap();
        }
        drop(tx);
        let a = rx.next().await.unwrap().unwrap();
        let b = rx.next().await.unwrap().unwrap();
        assert_eq!((a.session_id.as_str(), b.session_id.as_str()), ("a", "b"));
        assert!(rx.next().await.is_none());
    }
}
