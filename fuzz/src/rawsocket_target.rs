//! The RawSocket target: handshake and framing, either role.

use fahrbahn_core::rawsocket::{ClientConfig, Connection, Event, ServerConfig};

use crate::util::{base, pieces, take_byte};

/// What a connection did with its input.
#[derive(Debug, Default)]
struct Trace {
    events: Vec<Event>,
    out: Vec<u8>,
}

/// RawSocket, either role: the first byte picks the role (bit 0), the
/// serializer(s) (bits 1-2) and our length exponent (bits 4-7), the
/// second how the rest is cut into reads; the rest is what the peer sends
/// from the start (its 4-byte handshake, then frames).
///
/// Invariants: no panic; `Connected` once and first, nothing after
/// `Closed` and `Closed` last; messages within our limit; every message is
/// echoed back while the connection is open, which succeeds exactly
/// when it fits the peer's limit;
/// output bounded (the handshake, pongs and echoes); the same events
/// whether the input arrives at once or in pieces.
pub fn rawsocket(data: &[u8]) {
    let (setup, rest) = take_byte(data);
    let (chunk, input) = take_byte(rest);
    let server = setup & 1 == 0;
    let serializer = (setup >> 1 & 3).max(1);
    let exponent = setup >> 4;
    let run = |chunk: u8| {
        let mut conn = if server {
            let mut config = ServerConfig::new(vec![1, serializer]);
            config.max_len_exponent = exponent;
            Connection::server(config, base())
        } else {
            let mut config = ClientConfig::new(serializer);
            config.max_len_exponent = exponent;
            Connection::client(config, base())
        };
        let mut trace = Trace::default();
        let _ = conn.poll_transmit(&mut trace.out);
        assert_eq!(trace.out.len(), if server { 0 } else { 4 });
        let mut peer_max_len = None;
        let mut fed = 0;
        for piece in pieces(input, chunk) {
            conn.handle_bytes(base(), piece);
            fed += piece.len();
            while let Some(event) = conn.poll_event() {
                if let Some(Event::Closed(_)) = trace.events.last() {
                    panic!("event after Closed: {event:?}");
                }
                match &event {
                    Event::Connected {
                        serializer: chosen,
                        peer_max_len: max,
                    } => {
                        assert!(trace.events.is_empty(), "Connected is not the first event");
                        assert!(*chosen == serializer || (server && *chosen == 1));
                        peer_max_len = Some(*max);
                    }
                    Event::Message(message) => {
                        let max = peer_max_len.expect("a message before Connected");
                        assert!(message.len() <= conn.max_len(), "a message over our limit");
                        // A later frame of the same read may have ended
                        // the connection already.
                        if conn.is_open() {
                            let sent = conn.send(message);
                            assert_eq!(
                                sent.is_ok(),
                                message.len() <= max,
                                "echo of {} bytes, peer limit {max}: {sent:?}",
                                message.len()
                            );
                        }
                    }
                    Event::Pong(payload) => {
                        assert!(peer_max_len.is_some(), "a pong before Connected");
                        assert!(payload.len() <= conn.max_len(), "a pong over our limit");
                    }
                    Event::Closed(_) => assert!(conn.is_closed()),
                    _ => {}
                }
                trace.events.push(event);
            }
            let _ = conn.poll_transmit(&mut trace.out);
            // Handshake 4 bytes (the client's was counted above); a pong
            // or an echo is at most as long as what it answers.
            assert!(
                trace.out.len() <= fed + 8,
                "{} bytes of output for {fed} bytes of input",
                trace.out.len()
            );
        }
        conn.handle_eof(base());
        while let Some(event) = conn.poll_event() {
            if let Some(Event::Closed(_)) = trace.events.last() {
                panic!("event after Closed: {event:?}");
            }
            trace.events.push(event);
        }
        assert!(conn.is_closed(), "not closed after the end of stream");
        assert!(matches!(trace.events.last(), Some(Event::Closed(_))));
        trace
    };
    let trace = run(chunk);
    if chunk != 0 {
        let whole = run(0);
        assert_eq!(
            whole.events, trace.events,
            "different events when the input arrives at once"
        );
    }
}
