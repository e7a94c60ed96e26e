//! Cross-module tests of the WAMP message layer: wire examples, round trips
//! through every serializer, malformed input.

use proptest::prelude::*;

use super::raw;
use super::*;

fn dict(entries: &[(&str, Value)]) -> Dict {
    entries
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn payload() -> (Option<List>, Option<Dict>) {
    (
        Some(vec![
            Value::from("Hello, world!"),
            Value::Bytes(vec![0, 1, 2, 255]),
            Value::from(-7),
            Value::from(u64::MAX),
            Value::from(1.5),
            Value::Null,
            Value::Bool(true),
        ]),
        Some(dict(&[
            ("color", "orange".into()),
            ("sizes", Value::List(vec![23.into(), 42.into(), 7.into()])),
            (
                "nested",
                Value::Dict(dict(&[("deep", Value::List(vec![]))])),
            ),
        ])),
    )
}

/// One of every message type, some in several shapes.
fn samples() -> Vec<Message> {
    let (args, kwargs) = payload();
    let opts = dict(&[("acknowledge", true.into())]);
    vec![
        Message::Hello {
            realm: "somerealm".into(),
            details: dict(&[(
                "roles",
                Value::Dict(dict(&[("publisher", Value::Dict(Dict::new()))])),
            )]),
        },
        Message::Welcome {
            session: 9129137332,
            details: Dict::new(),
        },
        Message::Abort {
            details: dict(&[("message", "The realm does not exist.".into())]),
            reason: error::ERROR_NO_SUCH_REALM.into(),
        },
        Message::Challenge {
            authmethod: "wampcra".into(),
            extra: dict(&[("challenge", "{}".into())]),
        },
        Message::Authenticate {
            signature: "gir1mSx+deCDUV7wRM5SGIn/+R/ClqLZuH4m7FJeBVI=".into(),
            extra: Dict::new(),
        },
        Message::Goodbye {
            details: Dict::new(),
            reason: error::CLOSE_NORMAL.into(),
        },
        Message::Error {
            request_type: Message::CALL,
            request: 7814135,
            details: Dict::new(),
            error: "com.myapp.error.object_write_protected".into(),
            args: args.clone(),
            kwargs: kwargs.clone(),
        },
        Message::Error {
            request_type: Message::SUBSCRIBE,
            request: 713845233,
            details: Dict::new(),
            error: error::ERROR_NOT_AUTHORIZED.into(),
            args: None,
            kwargs: None,
        },
        Message::Publish {
            request: 239714735,
            options: opts.clone(),
            topic: "com.myapp.mytopic1".into(),
            args: args.clone(),
            kwargs: None,
        },
        Message::Publish {
            request: 239714735,
            options: Dict::new(),
            topic: "com.myapp.mytopic1".into(),
            args: None,
            kwargs: kwargs.clone(),
        },
        Message::Published {
            request: 239714735,
            publication: 4429313566,
        },
        Message::Subscribe {
            request: 713845233,
            options: dict(&[("match", "prefix".into())]),
            topic: "com.myapp".into(),
        },
        Message::Subscribed {
            request: 713845233,
            subscription: 5512315355,
        },
        Message::Unsubscribe {
            request: 85346237,
            subscription: 5512315355,
        },
        Message::Unsubscribed {
            request: 85346237,
            details: None,
        },
        Message::Unsubscribed {
            request: 0,
            details: Some(dict(&[("subscription", 5512315355u64.into())])),
        },
        Message::Event {
            subscription: 5512315355,
            publication: 4429313566,
            details: Dict::new(),
            args: args.clone(),
            kwargs: kwargs.clone(),
        },
        Message::Call {
            request: 7814135,
            options: Dict::new(),
            procedure: "com.myapp.ping".into(),
            args: None,
            kwargs: None,
        },
        Message::Call {
            request: MAX_ID,
            options: dict(&[("timeout", 1000.into())]),
            procedure: "com.myapp.echo".into(),
            args: args.clone(),
            kwargs: kwargs.clone(),
        },
        Message::Cancel {
            request: 7814135,
            options: dict(&[("mode", "kill".into())]),
        },
        Message::Result {
            request: 7814135,
            details: Dict::new(),
            args: Some(vec![30.into()]),
            kwargs: None,
        },
        Message::Register {
            request: 25349185,
            options: Dict::new(),
            procedure: "com.myapp.myprocedure1".into(),
        },
        Message::Registered {
            request: 25349185,
            registration: 2103333224,
        },
        Message::Unregister {
            request: 788923562,
            registration: 2103333224,
        },
        Message::Unregistered {
            request: 788923562,
            details: None,
        },
        Message::Unregistered {
            request: 0,
            details: Some(dict(&[("reason", "wamp.authentication.lost".into())])),
        },
        Message::Invocation {
            request: 6131533,
            registration: 9823526,
            details: Dict::new(),
            args: args.clone(),
            kwargs: kwargs.clone(),
        },
        Message::Interrupt {
            request: 6131533,
            options: dict(&[("mode", "killnowait".into())]),
        },
        Message::Yield {
            request: 6131533,
            options: dict(&[("progress", true.into())]),
            args,
            kwargs,
        },
    ]
}

#[test]
fn every_message_type_is_sampled() {
    let mut codes: Vec<u64> = samples().iter().map(Message::message_type).collect();
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(
        codes,
        [
            1, 2, 3, 4, 5, 6, 8, 16, 17, 32, 33, 34, 35, 36, 48, 49, 50, 64, 65, 66, 67, 68, 69, 70
        ]
    );
    for m in samples() {
        assert_eq!(Message::type_name(m.message_type()), Some(m.name()));
    }
}

#[test]
fn round_trip_every_message_and_serializer() {
    for &ser in Serializer::ALL {
        for msg in samples() {
            let mut out = Vec::new();
            ser.encode(&msg, &mut out);
            assert_eq!(ser.decode(&out).as_ref(), Ok(&msg), "{ser} {}", msg.name());
            assert_eq!(Message::from_value(msg.to_value()).as_ref(), Ok(&msg));
            assert_eq!(ser.decode_value(&out), Ok(msg.to_value()));
        }
    }
}

#[test]
fn round_trip_batched() {
    for &ser in Serializer::ALL {
        let mut out = Vec::new();
        for msg in samples() {
            ser.encode_batched(&msg, &mut out);
        }
        assert_eq!(ser.decode_batched(&out), Ok(samples()), "{ser}");
        assert_eq!(ser.decode_batched(&[]), Ok(vec![]));
    }
}

#[test]
fn batched_record_layout() {
    let msg = Message::Published {
        request: 1,
        publication: 2,
    };
    let mut out = Vec::new();
    Serializer::Json.encode_batched(&msg, &mut out);
    // 0x18, as Crossbar.io and AutobahnPython expect (see serializer.rs).
    assert_eq!(out, b"[17,1,2]\x18");
    out.clear();
    Serializer::MsgPack.encode_batched(&msg, &mut out);
    assert_eq!(out, [0, 0, 0, 4, 0x93, 17, 1, 2]);
    out.clear();
    Serializer::Cbor.encode_batched(&msg, &mut out);
    assert_eq!(out, [0, 0, 0, 4, 0x83, 17, 1, 2]);
}

#[test]
fn json_batched_separators() {
    let one = Message::Published {
        request: 1,
        publication: 2,
    };
    let two = Message::Unregistered {
        request: 5,
        details: None,
    };
    let both = vec![one.clone(), two.clone()];
    for input in [
        &b"[17,1,2]\x18[67,5]\x18"[..],
        b"[17,1,2]\x1e[67,5]\x1e",
        b"[17,1,2]\x1e[67,5]",
        b"[17,1,2]\x18[67,5]",
        b"[17,1,2]\x1e\x1e[67,5]\x18",
    ] {
        assert_eq!(Serializer::Json.decode_batched(input), Ok(both.clone()));
    }
    assert!(
        Serializer::Json
            .decode_batched(b"[17,1,2]\x1e[67,")
            .is_err()
    );
}

#[test]
fn binary_batched_truncation() {
    for ser in [Serializer::MsgPack, Serializer::Cbor] {
        assert_eq!(
            ser.decode_batched(&[0, 0]),
            Err(DecodeError::TruncatedBatch {
                serializer: ser.name(),
                needed: 4,
                available: 2
            })
        );
        assert_eq!(
            ser.decode_batched(&[0, 0, 0, 9, 1]),
            Err(DecodeError::TruncatedBatch {
                serializer: ser.name(),
                needed: 9,
                available: 1
            })
        );
        // A 4 GiB claim is rejected without allocating.
        assert!(ser.decode_batched(&[0xff, 0xff, 0xff, 0xff, 0x90]).is_err());
        assert!(ser.decode_batched(&[0, 0, 0, 0]).is_err());
    }
}

#[test]
fn json_wire_examples() {
    // Every example re-encodes byte for byte (compact, keys sorted).
    let examples = [
        r#"[1,"somerealm",{"roles":{"publisher":{},"subscriber":{}}}]"#,
        r#"[2,9129137332,{"roles":{"broker":{}}}]"#,
        r#"[3,{"message":"The realm does not exist."},"wamp.error.no_such_realm"]"#,
        r#"[4,"wampcra",{"challenge":"{\"nonce\": \"LHRTC9zeOIrt_9U3\"}"}]"#,
        r#"[5,"gir1mSx+deCDUV7wRM5SGIn/+R/ClqLZuH4m7FJeBVI=",{}]"#,
        r#"[6,{"message":"The host is shutting down now."},"wamp.close.system_shutdown"]"#,
        r#"[6,{},"wamp.close.goodbye_and_out"]"#,
        r#"[8,34,713845233,{},"wamp.error.no_such_subscription"]"#,
        r#"[8,48,7814135,{},"com.myapp.error.object_write_protected",["Object is write protected."],{"severity":3}]"#,
        r#"[16,239714735,{},"com.myapp.mytopic1"]"#,
        r#"[16,239714735,{},"com.myapp.mytopic1",["Hello, world!"]]"#,
        r#"[16,239714735,{},"com.myapp.mytopic1",[],{"color":"orange","sizes":[23,42,7]}]"#,
        r#"[16,239714735,{"acknowledge":true},"com.myapp.mytopic1"]"#,
        r#"[17,239714735,4429313566]"#,
        r#"[32,713845233,{},"com.myapp.mytopic1"]"#,
        r#"[33,713845233,5512315355]"#,
        r#"[34,85346237,5512315355]"#,
        r#"[35,85346237]"#,
        r#"[35,0,{"reason":"wamp.authentication.lost","subscription":1293722}]"#,
        r#"[36,5512315355,4429313566,{}]"#,
        r#"[36,5512315355,4429313566,{},[],{"color":"orange","sizes":[23,42,7]}]"#,
        r#"[48,7814135,{},"com.myapp.ping"]"#,
        r#"[48,7814135,{},"com.myapp.echo",["Hello, world!"]]"#,
        r#"[48,7814135,{},"com.myapp.user.new",["johnny"],{"firstname":"John","surname":"Doe"}]"#,
        r#"[49,7814135,{"mode":"kill"}]"#,
        r#"[50,7814135,{}]"#,
        r#"[50,7814135,{},[30]]"#,
        r#"[50,6131533,{"progress":true},["Hello, world!"]]"#,
        r#"[64,25349185,{},"com.myapp.myprocedure1"]"#,
        r#"[65,25349185,2103333224]"#,
        r#"[66,788923562,2103333224]"#,
        r#"[67,788923562]"#,
        r#"[68,6131533,9823526,{},["Hello, world!"]]"#,
        r#"[68,6131533,9823529,{},["johnny"],{"firstname":"John","surname":"Doe"}]"#,
        r#"[69,6131533,{"mode":"kill"}]"#,
        r#"[70,6131533,{}]"#,
        r#"[70,6131533,{},["Hello, world!"]]"#,
        r#"[70,6131533,{},[-1.5,null,false,9007199254740992]]"#,
    ];
    for ex in examples {
        let msg = Serializer::Json
            .decode(ex.as_bytes())
            .unwrap_or_else(|e| panic!("{ex}: {e}"));
        let mut out = Vec::new();
        Serializer::Json.encode(&msg, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), ex);
    }
}

#[test]
fn empty_payloads_are_omitted_and_normalized() {
    // An empty args list with kwargs stays as `[]`; empty ones are dropped.
    let msg = Message::Call {
        request: 1,
        options: Dict::new(),
        procedure: "p".into(),
        args: Some(vec![]),
        kwargs: Some(Dict::new()),
    };
    let mut out = Vec::new();
    Serializer::Json.encode(&msg, &mut out);
    assert_eq!(out, br#"[48,1,{},"p"]"#);
    let decoded = Serializer::Json.decode(br#"[48,1,{},"p",[],{}]"#).unwrap();
    assert_eq!(
        decoded,
        Message::Call {
            request: 1,
            options: Dict::new(),
            procedure: "p".into(),
            args: None,
            kwargs: None,
        }
    );
}

#[test]
fn binary_in_json() {
    let msg = Message::Publish {
        request: 1,
        options: Dict::new(),
        topic: "t".into(),
        args: Some(vec![Value::Bytes(vec![1, 2, 3])]),
        kwargs: Some(dict(&[("b", Value::Bytes(vec![]))])),
    };
    let mut out = Vec::new();
    Serializer::Json.encode(&msg, &mut out);
    assert_eq!(out, br#"[16,1,{},"t",["\u0000AQID"],{"b":"\u0000"}]"#);
    assert_eq!(Serializer::Json.decode(&out), Ok(msg));
    // Bytes deep inside too, and padding.
    let v = Serializer::Json
        .decode_value(br#"{"a":[{"b":"\u0000AQ=="}],"c":"plain"}"#)
        .unwrap();
    assert_eq!(
        v.get("a")
            .and_then(|a| a.get_index(0))
            .and_then(|b| b.get("b")),
        Some(&Value::Bytes(vec![1]))
    );
    assert_eq!(v.get("c"), Some(&Value::from("plain")));
    // Invalid base64 after the NUL is an error, not a string.
    let err = Serializer::Json.decode_value(br#""\u0000!!""#).unwrap_err();
    assert!(err.to_string().contains("base64"), "{err}");
    // MessagePack and CBOR carry bytes natively.
    let mut out = Vec::new();
    Serializer::MsgPack.encode_value(&Value::Bytes(vec![1, 2, 3]), &mut out);
    assert_eq!(out, [0xc4, 3, 1, 2, 3]);
    out.clear();
    Serializer::Cbor.encode_value(&Value::Bytes(vec![1, 2, 3]), &mut out);
    assert_eq!(out, [0x43, 1, 2, 3]);
}

#[test]
fn binary_wire_examples() {
    // [48, 7814135, {}, "com.myapp.ping"]
    let call = Serializer::Json
        .decode(br#"[48,7814135,{},"com.myapp.ping"]"#)
        .unwrap();
    let mut out = Vec::new();
    Serializer::MsgPack.encode(&call, &mut out);
    let mut expected = vec![0x94, 0x30, 0xce, 0x00, 0x77, 0x3b, 0xf7, 0x80, 0xae];
    expected.extend_from_slice(b"com.myapp.ping");
    assert_eq!(out, expected);
    out.clear();
    Serializer::Cbor.encode(&call, &mut out);
    let mut expected = vec![0x84, 0x18, 0x30, 0x1a, 0x00, 0x77, 0x3b, 0xf7, 0xa0, 0x6e];
    expected.extend_from_slice(b"com.myapp.ping");
    assert_eq!(out, expected);
    assert_eq!(Serializer::Cbor.decode(&out), Ok(call.clone()));
    // Indefinite-length CBOR (as some encoders send) decodes too.
    let mut indef = vec![
        0x9f, 0x18, 0x30, 0x1a, 0x00, 0x77, 0x3b, 0xf7, 0xbf, 0xff, 0x6e,
    ];
    indef.extend_from_slice(b"com.myapp.ping");
    indef.push(0xff);
    assert_eq!(Serializer::Cbor.decode(&indef), Ok(call));
}

#[test]
fn integers_are_lossless() {
    let values = [
        Value::Int(i64::MIN),
        Value::Int(-1),
        Value::Int(0),
        Value::Int(i64::MAX),
        Value::UInt(i64::MAX as u64 + 1),
        Value::UInt(u64::MAX),
        Value::Float(0.1),
        Value::Float(-1e300),
    ];
    for &ser in Serializer::ALL {
        for v in &values {
            let mut out = Vec::new();
            ser.encode_value(v, &mut out);
            let back = ser.decode_value(&out).unwrap();
            assert_eq!(&back, v, "{ser}");
            // The normalized representation comes back.
            assert_eq!(
                std::mem::discriminant(&back),
                std::mem::discriminant(v),
                "{ser} {v:?}"
            );
        }
    }
}

#[test]
fn subprotocols_and_rawsocket_ids() {
    for &ser in Serializer::ALL {
        for batched in [false, true] {
            let p = ser.subprotocol(batched);
            assert_eq!(Serializer::from_subprotocol(p), Some((ser, batched)));
            assert!(p.starts_with("wamp.2."));
            assert_eq!(p.ends_with(".batched"), batched);
        }
        assert_eq!(Serializer::from_rawsocket_id(ser.rawsocket_id()), Some(ser));
    }
    assert_eq!(Serializer::Json.subprotocol(false), "wamp.2.json");
    assert_eq!(
        Serializer::MsgPack.subprotocol(true),
        "wamp.2.msgpack.batched"
    );
    assert_eq!(Serializer::Cbor.subprotocol(false), "wamp.2.cbor");
    assert_eq!(Serializer::from_subprotocol("wamp.2.ubjson"), None);
    assert_eq!(Serializer::from_subprotocol("wamp.2.JSON"), None);
    assert_eq!(
        (
            Serializer::Json.rawsocket_id(),
            Serializer::MsgPack.rawsocket_id(),
            Serializer::Cbor.rawsocket_id()
        ),
        (1, 2, 3)
    );
    assert_eq!(Serializer::from_rawsocket_id(0), None);
    assert!(!Serializer::Json.is_binary());
    assert!(Serializer::MsgPack.is_binary() && Serializer::Cbor.is_binary());
}

fn json_err(input: &str) -> String {
    Serializer::Json
        .decode(input.as_bytes())
        .unwrap_err()
        .to_string()
}

#[test]
fn validation_errors() {
    let cases = [
        (
            r#"[48,1,{},5]"#,
            "CALL: element 3 (procedure) must be a string, got integer",
        ),
        (
            r#"[48,0,{},"p"]"#,
            "CALL: element 1 (request) must be an ID in [1, 2^53], got 0",
        ),
        (
            r#"[48,9007199254740993,{},"p"]"#,
            "CALL: element 1 (request) must be an ID in [1, 2^53], got 9007199254740993",
        ),
        (
            r#"[48,-1,{},"p"]"#,
            "CALL: element 1 (request) must be an ID in [1, 2^53], got -1",
        ),
        (
            r#"[48,1.5,{},"p"]"#,
            "CALL: element 1 (request) must be an ID in [1, 2^53], got float",
        ),
        (
            r#"[48,1,[],"p"]"#,
            "CALL: element 2 (options) must be a dict, got list",
        ),
        (
            r#"[48,1,{},"p",{}]"#,
            "CALL: element 4 (arguments) must be a list, got dict",
        ),
        (
            r#"[48,1,{},"p",[],[]]"#,
            "CALL: element 5 (argumentskw) must be a dict, got list",
        ),
        (
            r#"[48,1,{},"p",[],{},1]"#,
            "CALL: must have 4 to 6 elements, got 7",
        ),
        (r#"[48,1,{}]"#, "CALL: must have 4 to 6 elements, got 3"),
        (r#"[1,"realm"]"#, "HELLO: must have 3 elements, got 2"),
        (
            r#"[1,"realm",null]"#,
            "HELLO: element 2 (details) must be a dict, got null",
        ),
        (
            r#"[2,"1",{}]"#,
            "WELCOME: element 1 (session) must be an ID in [0, 2^53], got string",
        ),
        (
            r#"[35,1,[]]"#,
            "UNSUBSCRIBED: element 2 (details) must be a dict, got list",
        ),
        (
            r#"[8,-48,1,{},"e"]"#,
            "ERROR: element 1 (request type) must be a non-negative integer, got -48",
        ),
        (r#"[7,1]"#, "unknown WAMP message type 7"),
        (
            r#"[100000000000]"#,
            "unknown WAMP message type 100000000000",
        ),
        (
            r#"["CALL"]"#,
            "element 0 (message type) must be a non-negative integer, got string",
        ),
        (
            r#"[-1]"#,
            "element 0 (message type) must be a non-negative integer, got integer",
        ),
        (r#"[]"#, "a WAMP message must not be an empty list"),
        (r#"{"a":1}"#, "a WAMP message must be a list, got dict"),
        (r#""hi""#, "a WAMP message must be a list, got string"),
    ];
    for (input, expected) in cases {
        assert_eq!(json_err(input), expected, "{input}");
    }
    assert!(matches!(
        Serializer::Json.decode(b"[48,1,{},5]"),
        Err(DecodeError::Element {
            message: "CALL",
            index: 3,
            name: "procedure",
            ..
        })
    ));
    // Request 0 is allowed only for revocations.
    assert!(Serializer::Json.decode(br#"[35,0]"#).is_ok());
    assert!(Serializer::Json.decode(br#"[67,0,{}]"#).is_ok());
    assert!(Serializer::Json.decode(br#"[34,0,1]"#).is_err());
}

#[test]
fn malformed_bytes() {
    let json_cases: [&[u8]; 8] = [
        b"",
        b"[48,1,{},\"p\"",
        b"[48,1,{},\"p\"] x",
        b"[48,1,{},\"p\"][",
        b"\xff\xfe",
        b"[48,1,{1:2},\"p\"]",
        b"[48,1,{},\"p\xff\"]",
        b"[48,1,{},\"p\"]\x1e",
    ];
    for input in json_cases {
        assert!(
            matches!(
                Serializer::Json.decode(input),
                Err(DecodeError::Malformed {
                    serializer: "JSON",
                    ..
                })
            ),
            "{input:?}"
        );
    }
    let msgpack_cases: [&[u8]; 8] = [
        b"",
        &[0x94, 0x30, 0x01, 0x80],             // truncated CALL
        &[0x93, 0x11, 0x01, 0x02, 0x00],       // trailing byte
        &[0x91, 0x81, 0x01, 0x02],             // integer map key
        &[0xdd, 0xff, 0xff, 0xff, 0xff],       // array32 of 4 G elements, no data
        &[0xdb, 0xff, 0xff, 0xff, 0xff, b'a'], // str32 of 4 GiB
        &[0xc6, 0xff, 0xff, 0xff, 0xff, 0x00], // bin32 of 4 GiB
        &[0xd4, 0x01, 0x02],                   // fixext1
    ];
    for input in msgpack_cases {
        assert!(
            matches!(
                Serializer::MsgPack.decode(input),
                Err(DecodeError::Malformed {
                    serializer: "MessagePack",
                    ..
                })
            ),
            "{input:?}"
        );
    }
    let cbor_cases: [&[u8]; 9] = [
        b"",
        &[0x84, 0x18, 0x30, 0x01, 0xa0], // truncated CALL
        &[0x83, 0x11, 0x01, 0x02, 0x00], // trailing byte
        &[0x81, 0xa1, 0x01, 0x02],       // integer map key
        &[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], // array of 2^64 - 1
        &[0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00], // bytes of 2^64 - 1
        &[0x7a, 0xff, 0xff, 0xff, 0xff, b'a'], // text of 4 GiB
        &[0xc1, 0x01],                   // tag 1
        &[0x61, 0xff],                   // invalid UTF-8
    ];
    for input in cbor_cases {
        assert!(
            matches!(
                Serializer::Cbor.decode(input),
                Err(DecodeError::Malformed {
                    serializer: "CBOR",
                    ..
                })
            ),
            "{input:?}"
        );
    }
}

#[test]
fn nesting_is_bounded() {
    let deep = |open: &[u8], n: usize, close: &[u8]| {
        let mut v = open.repeat(n);
        v.extend(close.repeat(n));
        v
    };
    // Exactly MAX_NESTING levels are fine, one more is not.
    for (ser, open, close) in [
        (Serializer::Json, &b"["[..], &b"]"[..]),
        (Serializer::MsgPack, &[0x91][..], &[0x90][..]),
        (Serializer::Cbor, &[0x81][..], &[0x80][..]),
    ] {
        let fix = |n: usize| {
            if ser == Serializer::Json {
                deep(open, n, close)
            } else {
                // n - 1 one-element lists around an empty one.
                let mut v = open.repeat(n - 1);
                v.extend_from_slice(close);
                v
            }
        };
        assert!(ser.decode_value(&fix(MAX_NESTING)).is_ok(), "{ser}");
        let err = ser.decode_value(&fix(MAX_NESTING + 1)).unwrap_err();
        assert!(err.to_string().contains("nesting"), "{ser}: {err}");
        assert!(ser.decode_value(&fix(100_000)).is_err(), "{ser}");
    }
    // Dicts count too.
    let mut json = br#"{"a":"#.repeat(MAX_NESTING + 1);
    json.extend(b"1");
    json.extend(b"}".repeat(MAX_NESTING + 1));
    assert!(Serializer::Json.decode_value(&json).is_err());
}

fn arb_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        (i64::MAX as u64 + 1..=u64::MAX).prop_map(Value::UInt),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::Float),
        // JSON reads strings starting with NUL as binary.
        any::<String>()
            .prop_filter("no leading NUL", |s| !s.starts_with('\0'))
            .prop_map(Value::String),
        proptest::collection::vec(any::<u8>(), 0..16).prop_map(Value::Bytes),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::List),
            proptest::collection::btree_map(any::<String>(), inner, 0..6).prop_map(Value::Dict),
        ]
    })
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        for &ser in Serializer::ALL {
            let _ = ser.decode(&bytes);
            let _ = ser.decode_value(&bytes);
            let _ = ser.decode_batched(&bytes);
        }
    }

    #[test]
    fn mutated_messages_never_panic(
        index in 0usize..29,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
    ) {
        let all = samples();
        let msg = &all[index % all.len()];
        for &ser in Serializer::ALL {
            let mut out = Vec::new();
            ser.encode(msg, &mut out);
            for (pos, byte) in &flips {
                let len = out.len();
                out[pos % len] ^= byte;
            }
            if let Ok(decoded) = ser.decode(&out) {
                // Whatever decodes re-encodes and decodes to the same
                // thing: compared as bytes, since a flipped bit can make a
                // NaN, which never equals itself as a value.
                let mut again = Vec::new();
                ser.encode(&decoded, &mut again);
                let redecoded = ser.decode(&again);
                prop_assert!(redecoded.is_ok());
                let mut third = Vec::new();
                ser.encode(&redecoded.unwrap(), &mut third);
                prop_assert_eq!(third, again);
            }
        }
    }

    #[test]
    fn values_round_trip(v in arb_value()) {
        for &ser in Serializer::ALL {
            let mut out = Vec::new();
            ser.encode_value(&v, &mut out);
            prop_assert_eq!(ser.decode_value(&out), Ok(v.clone()), "{}", ser);
            // And through serde's own data model.
            prop_assert_eq!(to_value(&v), Ok(v.clone()));
        }
    }

    #[test]
    fn messages_round_trip_with_random_payloads(
        request in 1..=MAX_ID,
        args in proptest::collection::vec(arb_value(), 0..4),
        kwargs in proptest::collection::btree_map(any::<String>(), arb_value(), 0..4),
    ) {
        let msg = Message::Yield {
            request,
            options: Dict::new(),
            args: Some(args).filter(|a| !a.is_empty()),
            kwargs: Some(kwargs).filter(|k| !k.is_empty()),
        };
        for &ser in Serializer::ALL {
            let mut out = Vec::new();
            ser.encode_batched(&msg, &mut out);
            ser.encode_batched(&msg, &mut out);
            prop_assert_eq!(ser.decode_batched(&out), Ok(vec![msg.clone(), msg.clone()]));
        }
    }
}

// ----- payloads kept encoded (RawMessage) ---------------------------------

/// `decode_raw` accepts exactly what `decode` accepts, and gives the same
/// message once its payload is decoded (compared re-encoded: a NaN never
/// equals itself as a value).
fn raw_agrees(ser: Serializer, bytes: &[u8]) -> Result<(), TestCaseError> {
    let full = ser.decode(bytes);
    let raw = ser.decode_raw(bytes.to_vec());
    prop_assert_eq!(
        full.is_ok(),
        raw.is_ok(),
        "{}: {:?} vs {:?}",
        ser,
        full,
        raw
    );
    if let (Ok(full), Ok(raw)) = (full, raw) {
        let raw = raw.into_message();
        prop_assert!(raw.is_ok(), "{}: {:?}", ser, raw);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        ser.encode(&full, &mut a);
        ser.encode(&raw.unwrap(), &mut b);
        prop_assert_eq!(a, b, "{}", ser);
    }
    Ok(())
}

#[test]
fn raw_payloads_are_the_received_bytes() {
    for msg in samples() {
        for &ser in Serializer::ALL {
            let mut out = Vec::new();
            ser.encode(&msg, &mut out);
            let raw = ser.decode_raw(out.clone()).unwrap();
            let carries = raw::take_payload(&mut raw.message().clone()) != (None, None);
            let has = raw::take_payload(&mut msg.clone()) != (None, None);
            assert!(!carries, "{ser}: {msg:?}");
            assert_eq!(raw.payload().is_some(), has, "{ser}: {msg:?}");
            if let Some(p) = raw.payload() {
                assert_eq!(p.serializer(), ser);
                // The payload's bytes are a slice of the message's.
                assert!(out.windows(p.bytes().len()).any(|w| w == p.bytes()));
                assert!(out.ends_with(p.bytes()) || ser == Serializer::Json);
            }
            assert_eq!(raw.into_message().unwrap(), msg, "{ser}");
        }
    }
}

#[test]
fn raw_payloads_splice_into_a_new_envelope() {
    let (args, kwargs) = payload();
    let publish = Message::Publish {
        request: 1,
        options: Dict::new(),
        topic: "com.example.topic".into(),
        args: args.clone(),
        kwargs: kwargs.clone(),
    };
    let event = |args, kwargs| Message::Event {
        subscription: 5,
        publication: 6,
        details: dict(&[("topic", "com.example.topic".into())]),
        args,
        kwargs,
    };
    for &from in Serializer::ALL {
        let mut bytes = Vec::new();
        from.encode(&publish, &mut bytes);
        let (_, payload) = from.decode_raw(bytes).unwrap().into_parts();
        let payload = payload.unwrap();
        assert_eq!(payload.count(), 2);
        for &to in Serializer::ALL {
            let transcoded = payload.transcode(to).unwrap();
            assert_eq!(transcoded.decode().unwrap(), (args.clone(), kwargs.clone()));
            for codec in [Codec::new(to), Codec::batched(to)] {
                let mut spliced = Vec::new();
                raw::encode_spliced(codec, &event(None, None), &transcoded, &mut spliced);
                // The same bytes as encoding the whole EVENT.
                let mut whole = Vec::new();
                codec.encode(&event(args.clone(), kwargs.clone()), &mut whole);
                assert_eq!(spliced, whole, "{from} -> {codec}");
                assert_eq!(
                    codec.decode(&spliced).unwrap(),
                    vec![event(args.clone(), kwargs.clone())]
                );
            }
        }
    }
}

#[test]
fn malformed_raw_payloads_are_refused_like_decoded_ones() {
    let deep = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
    let json: Vec<Vec<u8>> = vec![
        // Nesting: the message list is level 1.
        format!("[16,1,{{}},\"t\",{}]", deep(MAX_NESTING - 1)).into_bytes(),
        format!("[16,1,{{}},\"t\",{}]", deep(MAX_NESTING)).into_bytes(),
        format!("[16,1,{{}},\"t\",[],{{\"a\":{}}}]", deep(MAX_NESTING - 2)).into_bytes(),
        format!("[16,1,{{}},\"t\",[],{{\"a\":{}}}]", deep(MAX_NESTING - 1)).into_bytes(),
        format!("[16,1,{{}},\"t\",{}]", deep(100_000)).into_bytes(),
        // Invalid UTF-8 and escapes.
        b"[16,1,{},\"t\",[\"\xff\"]]".to_vec(),
        b"[16,1,{},\"t\",[\"\\ud800\"]]".to_vec(),
        b"[16,1,{},\"t\",[],{\"\xc3\":1}]".to_vec(),
        // Bad binary convention.
        b"[16,1,{},\"t\",[\"\\u0000!!\"]]".to_vec(),
        // Truncated, trailing, wrong shapes, too many elements.
        b"[16,1,{},\"t\",[1,2".to_vec(),
        b"[16,1,{},\"t\",[1,2]] x".to_vec(),
        b"[16,1,{},\"t\",{}]".to_vec(),
        b"[16,1,{},\"t\",[],[]]".to_vec(),
        b"[16,1,{},\"t\",[],{},1]".to_vec(),
        b"[16,0,{},\"t\",[1]]".to_vec(),
        b"[70,1,{},[1],{\"a\":[]}]".to_vec(),
        b"[8,68,1,{},\"e\",[1],{\"a\":2}]".to_vec(),
        b"[8,68,1,{},\"e\",[1],{\"a\":2},3]".to_vec(),
        b"[16,1,{},\"t\",[1e999]]".to_vec(),
        b"[16,1,{},\"t\",[18446744073709551616]]".to_vec(),
    ];
    for bytes in &json {
        raw_agrees(Serializer::Json, bytes).unwrap();
    }
    for ok in [&json[0], &json[2]] {
        let raw = Serializer::Json.decode_raw(ok.clone()).unwrap();
        assert!(raw.payload().is_some());
    }
    let refused = |ser: Serializer, bytes: &[u8]| {
        assert!(ser.decode(bytes).is_err(), "{ser}: {bytes:?}");
        assert!(ser.decode_raw(bytes.to_vec()).is_err(), "{ser}: {bytes:?}");
    };
    refused(Serializer::Json, &json[1]);
    refused(Serializer::Json, &json[3]);
    refused(Serializer::Json, &json[5]);
    refused(Serializer::Json, &json[9]);
    // The binary serializers: the same checks on their bytes.
    for ser in [Serializer::MsgPack, Serializer::Cbor] {
        let publish = |args: Value| {
            let mut out = Vec::new();
            ser.encode_value(
                &Value::List(vec![
                    16.into(),
                    1.into(),
                    Value::Dict(Dict::new()),
                    "t".into(),
                    args,
                ]),
                &mut out,
            );
            out
        };
        let nest = |n: usize| (0..n).fold(Value::from(1), |v, _| Value::List(vec![v]));
        raw_agrees(ser, &publish(nest(MAX_NESTING - 1))).unwrap();
        refused(ser, &publish(nest(MAX_NESTING)));
        let ok = publish(Value::List(vec!["héllo".into(), Value::Bytes(vec![1, 2])]));
        raw_agrees(ser, &ok).unwrap();
        // Every truncation, and every single-byte corruption, agrees.
        for cut in 0..ok.len() {
            refused(ser, &ok[..cut]);
        }
        for i in 0..ok.len() {
            for byte in [0x00, 0xff, 0xc1, 0x1f, 0x9f, 0xdd, 0x7f, 0x80] {
                let mut bad = ok.clone();
                bad[i] = byte;
                raw_agrees(ser, &bad).unwrap();
            }
        }
        let mut trailing = ok.clone();
        trailing.push(0);
        refused(ser, &trailing);
        // A string that is not UTF-8.
        let s = "héllo".as_bytes();
        let at = ok.windows(s.len()).position(|w| w == s).unwrap();
        let mut bad = ok.clone();
        bad[at + 1] = 0xff;
        raw_agrees(ser, &bad).unwrap();
        // Non-string dictionary keys.
        let mut out = Vec::new();
        ser.encode_value(
            &Value::List(vec![70.into(), 1.into(), Value::Dict(Dict::new())]),
            &mut out,
        );
        out[0] += 2;
        out.push(if ser == Serializer::MsgPack {
            0x90
        } else {
            0x80
        });
        out.extend(if ser == Serializer::MsgPack {
            [0x81, 0x01, 0x01]
        } else {
            [0xa1, 0x01, 0x01]
        });
        refused(ser, &out);
    }
}

proptest! {
    #[test]
    fn raw_decoding_agrees_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        for &ser in Serializer::ALL {
            raw_agrees(ser, &bytes)?;
            let codec = Codec::batched(ser);
            prop_assert_eq!(codec.decode(&bytes).is_ok(), codec.decode_raw(bytes.clone()).is_ok());
        }
    }

    #[test]
    fn raw_decoding_agrees_on_mutated_messages(
        index in 0usize..29,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
    ) {
        let all = samples();
        let msg = &all[index % all.len()];
        for &ser in Serializer::ALL {
            let mut out = Vec::new();
            ser.encode(msg, &mut out);
            for (pos, byte) in &flips {
                let len = out.len();
                out[pos % len] ^= byte;
            }
            raw_agrees(ser, &out)?;
        }
    }

    #[test]
    fn raw_payloads_transcode_intact(
        args in proptest::collection::vec(arb_value(), 0..4),
        kwargs in proptest::collection::btree_map(any::<String>(), arb_value(), 0..4),
    ) {
        let msg = Message::Call {
            request: 3,
            options: Dict::new(),
            procedure: "com.example.p".into(),
            args: Some(args).filter(|a| !a.is_empty()),
            kwargs: Some(kwargs).filter(|k| !k.is_empty()),
        };
        for &from in Serializer::ALL {
            let mut out = Vec::new();
            from.encode(&msg, &mut out);
            raw_agrees(from, &out)?;
            let (_, payload) = from.decode_raw(out).unwrap().into_parts();
            let Some(payload) = payload else { continue };
            for &to in Serializer::ALL {
                let Message::Call { args, kwargs, .. } = &msg else { unreachable!() };
                prop_assert_eq!(payload.transcode(to).unwrap().decode().unwrap(), (args.clone(), kwargs.clone()));
            }
        }
    }
}

#[test]
fn transcoding_item_by_item_writes_what_encoding_the_values_writes() {
    // Container headers at every size boundary of MessagePack and CBOR.
    for n in [0usize, 1, 15, 16, 23, 24, 255, 256, 65_535, 65_536] {
        let args: List = (0..n).map(|i| Value::from((i % 300) as i64)).collect();
        let kwargs: Dict = (0..n.min(300))
            .map(|i| (format!("k{i}"), Value::Bytes(vec![i as u8])))
            .collect();
        let msg = Message::Yield {
            request: 1,
            options: Dict::new(),
            args: Some(args.clone()),
            kwargs: Some(kwargs.clone()),
        };
        for &from in Serializer::ALL {
            let mut bytes = Vec::new();
            from.encode(&msg, &mut bytes);
            let (_, payload) = from.decode_raw(bytes).unwrap().into_parts();
            let Some(payload) = payload else {
                assert_eq!(n, 0);
                continue;
            };
            for &to in Serializer::ALL {
                let transcoded = payload.transcode(to).unwrap();
                let mut whole = Vec::new();
                to.encode_value(&Value::List(args.clone()), &mut whole);
                if !kwargs.is_empty() {
                    if to == Serializer::Json {
                        whole.push(b',');
                    }
                    to.encode_value(&Value::Dict(kwargs.clone()), &mut whole);
                }
                assert!(transcoded.bytes() == whole, "{from} -> {to}, {n} items");
            }
        }
    }
}
