//! The WAMP decoding target: every serializer, batched or not.

use fahrbahn_core::wamp::{Codec, Message, Serializer};

use crate::util::take_byte;

/// The codec the first byte picks: a serializer (byte % 3) and batched
/// (bit 2).
pub(crate) fn codec_of(b: u8) -> Codec {
    let serializer = Serializer::ALL[usize::from(b) % Serializer::ALL.len()];
    Codec {
        serializer,
        batched: b & 0x04 != 0,
    }
}

/// The first byte picks the serializer and batching (see `codec_of`);
/// the rest is one transport payload.
///
/// Invariants: no panic; when the payload decodes as any value, encoding
/// that value and decoding it again gives it back; when it decodes as
/// messages, each one encoded and decoded again gives the same message
/// and the same bytes once more, and all of them encoded into one
/// (batched) payload decode to the same list. (Values holding a NaN are
/// not equal to themselves; for them only the bytes are compared.)
/// Decoding with the payload kept encoded (`decode_raw`, what the router
/// does) accepts exactly the payloads decoding accepts, and gives the same
/// messages once their payload is decoded (compared as bytes).
#[allow(clippy::eq_op, reason = "a value with a NaN is not equal to itself")]
pub fn wamp_decode(data: &[u8]) {
    let (b, payload) = take_byte(data);
    let codec = codec_of(b);
    let serializer = codec.serializer;

    if let Ok(value) = serializer.decode_value(payload) {
        let mut bytes = Vec::new();
        serializer.encode_value(&value, &mut bytes);
        let again = serializer
            .decode_value(&bytes)
            .unwrap_or_else(|e| panic!("{serializer}: an encoded value does not decode: {e}"));
        if value == value {
            assert_eq!(again, value, "{serializer}: a value changed on the way");
        }
        let mut twice = Vec::new();
        serializer.encode_value(&again, &mut twice);
        assert_eq!(twice, bytes, "{serializer}: encoding is not stable");
    }

    let decoded = codec.decode(payload);
    let raw = codec.decode_raw(payload.to_vec());
    assert_eq!(
        decoded.is_ok(),
        raw.is_ok(),
        "{codec}: decode and decode_raw disagree: {decoded:?} / {raw:?}"
    );
    let Ok(messages) = decoded else {
        return;
    };
    let raw = raw.unwrap_or_else(|_| unreachable!());
    assert_eq!(raw.len(), messages.len(), "{codec}: decode_raw count");
    for (message, raw) in messages.iter().zip(raw) {
        let raw = raw
            .into_message()
            .unwrap_or_else(|e| panic!("{codec}: a validated payload does not decode: {e}"));
        let (mut a, mut b) = (Vec::new(), Vec::new());
        serializer.encode(message, &mut a);
        serializer.encode(&raw, &mut b);
        assert_eq!(a, b, "{codec}: decode_raw gives another {}", message.name());
    }
    for message in &messages {
        let mut bytes = Vec::new();
        serializer.encode(message, &mut bytes);
        let again: Message = serializer.decode(&bytes).unwrap_or_else(|e| {
            panic!(
                "{serializer}: {} does not decode once encoded: {e}",
                message.name()
            )
        });
        if message == message {
            assert_eq!(
                &again, message,
                "{serializer}: a message changed on the way"
            );
        }
        let mut twice = Vec::new();
        serializer.encode(&again, &mut twice);
        assert_eq!(twice, bytes, "{serializer}: encoding is not stable");
    }
    let mut batch = Vec::new();
    for message in &messages {
        codec.encode(message, &mut batch);
        if !codec.batched {
            break;
        }
    }
    let decoded = codec
        .decode(&batch)
        .unwrap_or_else(|e| panic!("{codec}: encoded messages do not decode: {e}"));
    assert_eq!(
        decoded.len(),
        messages.len(),
        "{codec}: message count changed"
    );
    if messages == messages {
        assert_eq!(decoded, messages, "{codec}: messages changed on the way");
    }
}
