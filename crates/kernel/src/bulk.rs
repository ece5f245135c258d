//! Many route requests on one blocking NETLINK_ROUTE socket, written in batches: one `send`
//! carries up to [`BATCH`] messages, which the kernel processes in order, acknowledging each.
//!
//! Why not the rtnetlink handle: each request there is its own `sendto`, `recvfrom`, channel
//! message and task wake-up. For 100,000 routes that overhead was larger than the kernel's own
//! work (`ip -batch`, one request at a time, was faster than the handle with 256 in flight).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use netlink_packet_core::{
    NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_REQUEST,
};
use netlink_packet_route::RouteNetlinkMessage;
use rtnetlink::sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

/// Messages per `send`: their acknowledgements (capped, `NETLINK_CAP_ACK`) must fit the receive
/// buffer, or the kernel drops them.
const BATCH: usize = 128;
/// Bytes per `send`, at most (well under the default send buffer).
const BATCH_BYTES: usize = 32 << 10;
/// The receive buffer asked for.
const RX_BUFFER: usize = 4 << 20;

/// A blocking NETLINK_ROUTE socket for batched requests (see the module doc).
#[derive(Debug, Clone)]
pub(crate) struct BulkSocket {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug)]
struct Inner {
    socket: Socket,
    seq: u32,
}

/// The outcome of one request: the kernel's error answer, or `RequestFailed` when no answer
/// came (the socket failed).
pub(crate) type Outcome = Result<(), rtnetlink::Error>;

impl BulkSocket {
    /// Opens the socket in the current network namespace.
    pub fn new() -> std::io::Result<Self> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        // Best effort: smaller acknowledgements, a larger buffer for them.
        let _ = socket.set_cap_ack(true);
        let _ = socket.set_rx_buf_sz(RX_BUFFER);
        Ok(BulkSocket {
            inner: Arc::new(Mutex::new(Inner { socket, seq: 1 })),
        })
    }

    /// Sends every request (`flags` are added to `NLM_F_REQUEST | NLM_F_ACK`), in order, and
    /// returns one outcome per request. Blocking: call from a blocking context.
    pub fn run(&self, requests: Vec<(RouteNetlinkMessage, u16)>) -> Vec<Outcome> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::with_capacity(requests.len());
        let mut batch = Batch {
            buf: Vec::with_capacity(BATCH_BYTES + 4096),
            pending: HashMap::with_capacity(BATCH),
            rx: Vec::with_capacity(64 << 10),
        };
        for (msg, flags) in requests {
            let mut m =
                NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::InnerMessage(msg));
            m.header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
            m.header.sequence_number = inner.seq;
            m.finalize();
            let len = m.buffer_len();
            if !batch.pending.is_empty()
                && (batch.pending.len() >= BATCH || batch.buf.len() + len > BATCH_BYTES)
            {
                inner.flush(&mut batch, &mut out);
            }
            let at = batch.buf.len();
            batch.buf.resize(at + len, 0);
            m.serialize(&mut batch.buf[at..]);
            batch.pending.insert(inner.seq, out.len());
            out.push(Err(rtnetlink::Error::RequestFailed));
            inner.seq = inner.seq.wrapping_add(1).max(1);
        }
        inner.flush(&mut batch, &mut out);
        out
    }
}

/// The requests of one `send`, and the buffer their answers are read into.
struct Batch {
    buf: Vec<u8>,
    /// Sequence number -> index of the outcome.
    pending: HashMap<u32, usize>,
    rx: Vec<u8>,
}

impl Inner {
    /// Sends the batch and records the answers in `out`; the batch is empty afterwards.
    fn flush(&self, batch: &mut Batch, out: &mut [Outcome]) {
        if batch.pending.is_empty() {
            return;
        }
        if let Err(e) = self.socket.send(&batch.buf, 0) {
            tracing::warn!(error = %e, "netlink send failed");
            batch.pending.clear();
        }
        while !batch.pending.is_empty() {
            batch.rx.clear();
            if let Err(e) = self.socket.recv(&mut batch.rx, 0) {
                tracing::warn!(error = %e, "netlink receive failed");
                break;
            }
            let rx = &batch.rx;
            let mut at = 0;
            while at < rx.len() {
                let Ok(b) = NetlinkBuffer::new_checked(&rx[at..]) else {
                    break;
                };
                let len = b.length() as usize;
                if len == 0 {
                    break;
                }
                if let Some(i) = batch.pending.remove(&b.sequence_number()) {
                    out[i] = ack_code(&rx[at..at + len]);
                }
                at += (len + 3) & !3;
            }
        }
        batch.buf.clear();
        batch.pending.clear();
    }
}

/// The outcome an answer carries: an `NLMSG_ERROR` with code 0 is the acknowledgement.
fn ack_code(bytes: &[u8]) -> Outcome {
    match NetlinkMessage::<RouteNetlinkMessage>::deserialize(bytes) {
        Ok(m) => match m.payload {
            NetlinkPayload::Error(e) if e.code.is_some() => Err(rtnetlink::Error::NetlinkError(e)),
            _ => Ok(()),
        },
        Err(_) => Err(rtnetlink::Error::RequestFailed),
    }
}
