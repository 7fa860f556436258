//! The cluster's certificate authority and node identity.
//!
//! Owns: the root CA (generate, load, sign CSRs), join tokens, what a certificate says about
//! its holder (CN = node ID, OU = role, O = cluster ID), authorization helpers for gRPC servers,
//! a node's credentials on disk, the TLS configurations every TCP listener and client uses (with
//! a holder that swaps renewed credentials in while servers and clients run), the remote API's
//! TLS accept loop, the autolock key format and sealing, and the join flow a new node runs
//! against a manager.
//!
//! Must not touch: the store, Raft, or any decision about *which* role a joining node gets (the
//! manager's CA service decides that from the token and passes it to [`RootCa::sign_csr`]).

mod client;
mod credentials;
mod error;
mod identity;
mod join;
mod listener;
mod live;
mod pem;
mod root;
mod tls;
mod token;
mod unlock;

pub use credentials::{write_atomic as write_file_durably, NodeCredentials};
pub use error::CaError;
pub use identity::{
    authorize, identity_from_cert_der, peer_cert_not_after_ms, peer_identity, role_ou, PeerIdentity,
};
pub use join::{join, JOIN_TIMEOUT};
pub use listener::{tls_incoming, TlsIncoming};
pub use live::{live_credentials, CredentialsSwap, LiveCredentials};
pub use root::{bundle_digest, new_key_and_csr, RootCa, ROOT_CA_CN};
pub use tls::{anonymous_client_tls, install_ring_provider};
pub use token::{
    generate_join_token, parse_join_token, retarget_join_token, JoinToken, TOKEN_PREFIX,
    TOKEN_VERSION,
};
pub use unlock::{is_sealed, UnlockKey, UNLOCK_KEY_PREFIX};
