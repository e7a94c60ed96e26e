//! The router's side of one WAMP transport: WebSocket or RawSocket server
//! framing plus the negotiated serializer, as a [`Machine`] that turns
//! bytes into [`Message`]s and back. Sessions and routing live in the
//! router; this only speaks the transport.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::message::Message;
use super::serializer::Serializer;
use crate::{CloseOrder, Machine, Rng, rawsocket, ws};

/// Every WAMP WebSocket subprotocol we serve, in order of preference.
pub fn server_subprotocols() -> Vec<String> {
    let mut all = Vec::new();
    for s in [Serializer::MsgPack, Serializer::Cbor, Serializer::Json] {
        for batched in [false, true] {
            all.push(s.subprotocol(batched).to_owned());
        }
    }
    all
}

/// What a [`ServerConnection`] reports.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent {
    /// The transport handshake finished with this serializer.
    Connected {
        /// The serializer.
        serializer: Serializer,
        /// Whether batched.
        batched: bool,
    },
    /// A message from the client.
    Message(Message),
    /// The client sent something that does not decode: the router should
    /// abort the session with `wamp.error.protocol_violation`.
    Invalid(String),
    /// The transport ended (the reason when abnormal). The last event.
    Closed(Option<String>),
}

#[derive(Debug)]
enum Framing {
    WebSocket(Box<ws::Connection>),
    RawSocket(rawsocket::Connection),
}

/// One client transport of a router.
#[derive(Debug)]
pub struct ServerConnection {
    framing: Framing,
    serializer: Option<(Serializer, bool)>,
    events: VecDeque<ServerEvent>,
    closed: bool,
    scratch: Vec<u8>,
}

impl ServerConnection {
    /// A WebSocket transport; the client must offer a `wamp.2.*`
    /// subprotocol (others get HTTP 400, as Crossbar.io answers).
    pub fn websocket(mut config: ws::ServerConfig, rng: Rng, now: Instant) -> Self {
        config.subprotocols = server_subprotocols();
        config.defer_accept = true;
        Self::new(Framing::WebSocket(Box::new(ws::Connection::server(
            config, rng, now,
        ))))
    }

    /// A RawSocket transport accepting JSON, MessagePack and CBOR.
    pub fn rawsocket(mut config: rawsocket::ServerConfig, now: Instant) -> Self {
        config.serializers = [Serializer::Json, Serializer::MsgPack, Serializer::Cbor]
            .iter()
            .map(|s| s.rawsocket_id())
            .collect();
        Self::new(Framing::RawSocket(rawsocket::Connection::server(
            config, now,
        )))
    }

    fn new(framing: Framing) -> Self {
        Self {
            framing,
            serializer: None,
            events: VecDeque::new(),
            closed: false,
            scratch: Vec::new(),
        }
    }

    /// The negotiated serializer, once connected.
    pub fn serializer(&self) -> Option<(Serializer, bool)> {
        self.serializer
    }

    /// Encodes and frames a message for the client. Fails when the
    /// transport is not open or the message is too large for the client.
    pub fn send(&mut self, message: &Message) -> Result<(), String> {
        let Some((serializer, batched)) = self.serializer else {
            return Err("the transport is not connected".into());
        };
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        if batched {
            serializer.encode_batched(message, &mut buf);
        } else {
            serializer.encode(message, &mut buf);
        }
        let result = match &mut self.framing {
            Framing::WebSocket(ws) if serializer.is_binary() => {
                ws.send_binary(&buf).map_err(|e| e.to_string())
            }
            Framing::WebSocket(ws) => match std::str::from_utf8(&buf) {
                Ok(text) => ws.send_text(text).map_err(|e| e.to_string()),
                Err(_) => Err("JSON encoder produced invalid UTF-8".to_owned()),
            },
            Framing::RawSocket(rs) => rs.send(&buf).map_err(|e| e.to_string()),
        };
        self.scratch = buf;
        result
    }

    /// Ends the transport (after whatever was sent so far).
    pub fn close(&mut self, now: Instant) {
        match &mut self.framing {
            Framing::WebSocket(ws) => {
                if ws.is_open() {
                    let _ = ws.close(now, ws::CloseCode::NORMAL, "");
                }
            }
            Framing::RawSocket(rs) => rs.close(),
        }
        self.drain(now);
    }

    fn push_payload(&mut self, payload: &[u8]) {
        let Some((serializer, batched)) = self.serializer else {
            return;
        };
        let decoded = if batched {
            serializer.decode_batched(payload)
        } else {
            serializer.decode(payload).map(|m| vec![m])
        };
        match decoded {
            Ok(messages) => self
                .events
                .extend(messages.into_iter().map(ServerEvent::Message)),
            Err(e) => self
                .events
                .push_back(ServerEvent::Invalid(format!("undecodable message: {e}"))),
        }
    }

    fn drain(&mut self, now: Instant) {
        loop {
            match &mut self.framing {
                Framing::WebSocket(ws) => match ws.poll_event() {
                    None => break,
                    Some(ws::Event::Request(request)) => {
                        let offered = request.subprotocols();
                        let chosen = server_subprotocols()
                            .into_iter()
                            .find(|p| offered.contains(&p.as_str()));
                        let result = match chosen {
                            Some(p) => ws.accept(
                                now,
                                ws::Accept {
                                    subprotocol: Some(p),
                                    headers: Vec::new(),
                                },
                            ),
                            None => ws.reject(
                                400,
                                &format!(
                                    "This server only speaks WebSocket subprotocols {}",
                                    server_subprotocols().join(", ")
                                ),
                            ),
                        };
                        if let Err(e) = result {
                            log::debug!("handshake answer failed: {e}");
                        }
                    }
                    Some(ws::Event::Connected(handshake)) => {
                        if let Some((serializer, batched)) = handshake
                            .subprotocol
                            .as_deref()
                            .and_then(Serializer::from_subprotocol)
                        {
                            self.serializer = Some((serializer, batched));
                            self.events.push_back(ServerEvent::Connected {
                                serializer,
                                batched,
                            });
                        }
                    }
                    Some(ws::Event::Message(m)) => self.push_payload(m.as_bytes()),
                    Some(ws::Event::Closed(c)) => {
                        self.closed = true;
                        self.events
                            .push_back(ServerEvent::Closed(c.error.map(|e| e.to_string())));
                    }
                    Some(_) => {}
                },
                Framing::RawSocket(rs) => match rs.poll_event() {
                    None => break,
                    Some(rawsocket::Event::Connected { serializer, .. }) => {
                        if let Some(s) = Serializer::from_rawsocket_id(serializer) {
                            self.serializer = Some((s, false));
                            self.events.push_back(ServerEvent::Connected {
                                serializer: s,
                                batched: false,
                            });
                        }
                    }
                    Some(rawsocket::Event::Message(m)) => self.push_payload(&m),
                    Some(rawsocket::Event::Closed(error)) => {
                        self.closed = true;
                        self.events
                            .push_back(ServerEvent::Closed(error.map(|e| e.to_string())));
                    }
                    Some(_) => {}
                },
            }
        }
    }
}

/// Forwards a byte-level call to whichever framing is in use.
macro_rules! framing {
    ($self:ident, $f:ident => $e:expr) => {
        match &mut $self.framing {
            Framing::WebSocket($f) => $e,
            Framing::RawSocket($f) => $e,
        }
    };
}

impl Machine for ServerConnection {
    type Event = ServerEvent;

    fn handle_bytes(&mut self, now: Instant, data: &[u8]) {
        framing!(self, f => f.handle_bytes(now, data));
        self.drain(now);
    }

    fn handle_eof(&mut self, now: Instant) {
        framing!(self, f => f.handle_eof(now));
        self.drain(now);
    }

    fn handle_timeout(&mut self, now: Instant) {
        framing!(self, f => f.handle_timeout(now));
        self.drain(now);
    }

    fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> usize {
        framing!(self, f => f.poll_transmit(buf))
    }

    fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match &self.framing {
            Framing::WebSocket(f) => f.poll_timeout(),
            Framing::RawSocket(f) => f.poll_timeout(),
        }
    }

    fn is_closed(&self) -> bool {
        self.closed
    }

    fn close_order(&self) -> CloseOrder {
        CloseOrder::CloseFirst
    }

    fn linger(&self) -> Duration {
        match &self.framing {
            Framing::WebSocket(f) => Machine::linger(f.as_ref()),
            Framing::RawSocket(f) => Machine::linger(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wamp::{ClientConnection, Dict, SessionConfig, SessionEvent};

    fn pump(client: &mut ClientConnection, server: &mut ServerConnection, now: Instant) {
        loop {
            let mut buf = Vec::new();
            let a = client.poll_transmit(&mut buf);
            server.handle_bytes(now, &buf);
            buf.clear();
            let b = server.poll_transmit(&mut buf);
            client.handle_bytes(now, &buf);
            if a + b == 0 {
                break;
            }
        }
    }

    fn join_over(mut client: ClientConnection, mut server: ServerConnection) {
        let now = Instant::now();
        pump(&mut client, &mut server, now);
        assert!(matches!(
            server.poll_event(),
            Some(ServerEvent::Connected { .. })
        ));
        assert!(matches!(
            server.poll_event(),
            Some(ServerEvent::Message(Message::Hello { .. }))
        ));
        server
            .send(&Message::Welcome {
                session: 5,
                details: Dict::new(),
            })
            .unwrap();
        pump(&mut client, &mut server, now);
        assert!(matches!(
            client.poll_event(),
            Some(SessionEvent::Joined { session: 5, .. })
        ));
    }

    #[test]
    fn client_joins_over_every_transport_and_serializer() {
        let now = Instant::now();
        for (s, batched) in [
            (Serializer::Json, false),
            (Serializer::Json, true),
            (Serializer::MsgPack, false),
            (Serializer::Cbor, true),
        ] {
            let client = ClientConnection::websocket(
                ws::ClientConfig::default(),
                &[(s, batched)],
                SessionConfig::new("realm1"),
                Rng::from_seed(1),
                now,
            );
            let server =
                ServerConnection::websocket(ws::ServerConfig::default(), Rng::from_seed(2), now);
            join_over(client, server);
        }
        for s in [Serializer::Json, Serializer::MsgPack, Serializer::Cbor] {
            let client = ClientConnection::rawsocket(
                rawsocket::ClientConfig::new(1),
                s,
                SessionConfig::new("realm1"),
                now,
            );
            let server = ServerConnection::rawsocket(rawsocket::ServerConfig::new(vec![]), now);
            join_over(client, server);
        }
    }

    #[test]
    fn non_wamp_websocket_clients_get_400() {
        let now = Instant::now();
        let mut client =
            ws::Connection::client(ws::ClientConfig::default(), Rng::from_seed(1), now);
        let mut server =
            ServerConnection::websocket(ws::ServerConfig::default(), Rng::from_seed(2), now);
        let mut buf = Vec::new();
        let _ = client.poll_transmit(&mut buf);
        server.handle_bytes(now, &buf);
        buf.clear();
        let _ = server.poll_transmit(&mut buf);
        assert!(buf.starts_with(b"HTTP/1.1 400"));
        assert!(matches!(
            server.poll_event(),
            Some(ServerEvent::Closed(Some(_)))
        ));
    }

    #[test]
    fn garbage_is_reported_invalid() {
        let now = Instant::now();
        let mut server = ServerConnection::rawsocket(rawsocket::ServerConfig::new(vec![]), now);
        server.handle_bytes(now, &[0x7F, 0xF1, 0, 0]);
        assert!(matches!(
            server.poll_event(),
            Some(ServerEvent::Connected { .. })
        ));
        server.handle_bytes(now, &[0, 0, 0, 3, b'[', b'x', b']']);
        assert!(matches!(server.poll_event(), Some(ServerEvent::Invalid(_))));
    }
}
