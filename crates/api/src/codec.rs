//! The gRPC codec of every service we generate: prost's, with a small first buffer per call.
//! Owns only the buffer sizes; encoding is prost's.
//!
//! Why: tonic gives every call, and so every open stream, an 8 KiB encode buffer that lives
//! as long as the stream (and an 8 KiB decode buffer on the receiving side). Each connected
//! node holds four streams open on the manager (session, assignments, networks, logs), so
//! 32 KiB per node sat in buffers that carry a few hundred bytes at a time: 160 MiB at
//! 5,000 nodes. A buffer still grows to the largest message it carries, so large messages
//! (Raft entries, snapshot chunks, task lists) cost one reallocation, not a failure.

use std::marker::PhantomData;
use tonic::codec::{BufferSettings, Codec};
use tonic_prost::ProstCodec;

/// The first size of a call's encode and decode buffers.
pub const FIRST_BUFFER: usize = 512;
/// tonic's own: a stream hands its buffer over once it holds this much.
const YIELD_THRESHOLD: usize = 32 * 1024;

/// Prost encoding with [`FIRST_BUFFER`]-byte buffers (named in `build.rs`).
#[derive(Debug, Clone)]
pub struct SmallBufferCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for SmallBufferCodec<T, U> {
    fn default() -> Self {
        SmallBufferCodec(PhantomData)
    }
}

impl<T, U> Codec for SmallBufferCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = <ProstCodec<T, U> as Codec>::Encoder;
    type Decoder = <ProstCodec<T, U> as Codec>::Decoder;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::raw_encoder(settings())
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstCodec::<T, U>::raw_decoder(settings())
    }
}

fn settings() -> BufferSettings {
    BufferSettings::new(FIRST_BUFFER, YIELD_THRESHOLD)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tonic::codec::Encoder;

    #[test]
    fn the_buffers_start_small() {
        let mut c = SmallBufferCodec::<crate::Task, crate::Task>::default();
        // The settings' fields are private; their Debug form names them.
        let shown = format!("{:?}", c.encoder().buffer_settings());
        assert!(shown.contains("buffer_size: 512"), "{shown}");
        let shown = format!("{:?}", tonic::codec::Decoder::buffer_settings(&c.decoder()));
        assert!(shown.contains("buffer_size: 512"), "{shown}");
    }
}
