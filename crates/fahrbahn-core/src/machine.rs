//! The contract every byte-level state machine of the core follows, so that
//! one driver loop can run any of them.

use std::time::{Duration, Instant};

/// Who ends the transport after a protocol's closing handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseOrder {
    /// Close our write side first, then wait (bounded) for the peer's
    /// end of stream — a WebSocket server does this (RFC 6455 7.1.1).
    CloseFirst,
    /// Wait (bounded) for the peer to end the stream, then close ours —
    /// a WebSocket client does this.
    WaitForPeer,
}

/// A sans-IO protocol state machine over a byte stream.
///
/// Inputs are `handle_*`, outputs are `poll_*`; time is passed in. After
/// any input or command a driver drains [`poll_transmit`](Self::poll_transmit),
/// [`poll_timeout`](Self::poll_timeout) and [`poll_event`](Self::poll_event).
/// Once [`is_closed`](Self::is_closed) is true and the events are drained,
/// the driver flushes the last bytes and ends the transport in the
/// [`close_order`](Self::close_order), waiting at most
/// [`linger`](Self::linger) for the peer.
pub trait Machine {
    /// What the machine reports to the application.
    type Event;

    /// Bytes arrived from the transport.
    fn handle_bytes(&mut self, now: Instant, data: &[u8]);
    /// The transport reached end of stream.
    fn handle_eof(&mut self, now: Instant);
    /// A deadline from [`poll_timeout`](Self::poll_timeout) passed.
    fn handle_timeout(&mut self, now: Instant);
    /// Appends bytes to send to `buf`; returns how many.
    fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> usize;
    /// Like [`poll_transmit`](Self::poll_transmit), possibly one buffer at
    /// a time (a large payload swapped into an empty `buf` rather than
    /// copied); callers repeat until it returns 0.
    fn poll_transmit_chunk(&mut self, buf: &mut Vec<u8>) -> usize {
        self.poll_transmit(buf)
    }
    /// How many bytes [`poll_transmit`](Self::poll_transmit) would hand out
    /// now, as far as the machine can count them (0 by default). A driver
    /// adds what it holds itself to decide when to stop reading.
    fn queued_output(&self) -> usize {
        0
    }
    /// The next event.
    fn poll_event(&mut self) -> Option<Self::Event>;
    /// The next deadline.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Whether the machine has ended (its last event is queued).
    fn is_closed(&self) -> bool;
    /// Who ends the transport first.
    fn close_order(&self) -> CloseOrder;
    /// How long to wait for the peer when ending the transport.
    fn linger(&self) -> Duration;
}
