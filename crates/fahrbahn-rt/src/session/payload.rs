//! What calls, invocations and subscriptions carry.

use fahrbahn_core::wamp::{
    ApplicationError, Dict, List, PublicationId, Value, from_value, to_value,
};
use futures_core::Stream as _;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Error;

/// The result of a call: positional and keyword results.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallResult {
    /// Positional results.
    pub args: List,
    /// Keyword results.
    pub kwargs: Dict,
    /// RESULT details.
    pub details: Dict,
}

impl CallResult {
    /// A result with positional values.
    pub fn args(args: List) -> Self {
        Self {
            args,
            ..Self::default()
        }
    }

    /// A result from positional and keyword values.
    pub fn new(args: List, kwargs: Dict) -> Self {
        Self {
            args,
            kwargs,
            details: Dict::new(),
        }
    }

    /// The first positional result, decoded.
    pub fn first<T: DeserializeOwned>(&self) -> Result<T, Error> {
        let v = self.args.first().cloned().unwrap_or(Value::Null);
        Ok(from_value(v)?)
    }

    /// All positional results, decoded (e.g. into a tuple or a `Vec`).
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, Error> {
        Ok(from_value(Value::List(self.args.clone()))?)
    }
}

/// The input of a call whose caller streams it (progressive call
/// invocations), for a handler registered with
/// [`Session::register_streaming`](crate::Session::register_streaming): a
/// [`Stream`](futures_core::Stream) of the parts, one [`Invocation`] each
/// (`details.progress` is true on all but the last). It ends after the
/// last part; a plain call gives one part.
#[derive(Debug)]
pub struct InvocationStream {
    pub(crate) parts: futures_channel::mpsc::UnboundedReceiver<Invocation>,
}

impl InvocationStream {
    /// The next part; `None` after the last.
    pub async fn next(&mut self) -> Option<Invocation> {
        std::future::poll_fn(|cx| std::pin::Pin::new(&mut self.parts).poll_next(cx)).await
    }
}

impl futures_core::Stream for InvocationStream {
    type Item = Invocation;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Invocation>> {
        std::pin::Pin::new(&mut self.parts).poll_next(cx)
    }
}

/// A call to one of our procedures.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    /// Positional arguments.
    pub args: List,
    /// Keyword arguments.
    pub kwargs: Dict,
    /// INVOCATION details (caller, procedure for pattern registrations…).
    pub details: Dict,
}

impl Invocation {
    /// The positional arguments decoded (e.g. into a tuple).
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, ApplicationError> {
        from_value(Value::List(self.args.clone())).map_err(|e| {
            ApplicationError::new(fahrbahn_core::wamp::error::ERROR_INVALID_ARGUMENT)
                .with_args(vec![Value::String(e.to_string())])
        })
    }
}

/// An event received on a subscription.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The publication id.
    pub publication: PublicationId,
    /// Positional payload.
    pub args: List,
    /// Keyword payload.
    pub kwargs: Dict,
    /// EVENT details (publisher, topic for pattern subscriptions…).
    pub details: Dict,
}

impl Event {
    /// What the event costs in memory, estimated: its strings and bytes,
    /// plus a value's size for each value (the bound of
    /// `SessionOptions::max_queued_event_bytes` counts this).
    pub(super) fn estimated_size(&self) -> usize {
        const VALUE: usize = std::mem::size_of::<Value>();
        fn size(value: &Value) -> usize {
            VALUE
                + match value {
                    Value::String(s) => s.len(),
                    Value::Bytes(b) => b.len(),
                    Value::List(items) => items.iter().map(size).sum(),
                    Value::Dict(dict) => dict.iter().map(|(k, v)| k.len() + size(v)).sum(),
                    _ => 0,
                }
        }
        let dict = |d: &Dict| d.iter().map(|(k, v)| k.len() + size(v)).sum::<usize>();
        std::mem::size_of::<Self>()
            + self.args.iter().map(size).sum::<usize>()
            + dict(&self.kwargs)
            + dict(&self.details)
    }
}

/// Converts serializable arguments into a WAMP positional list: a tuple or
/// sequence becomes the list, any other value a one-element list.
pub fn to_args<T: Serialize + ?Sized>(args: &T) -> Result<List, Error> {
    match to_value(args)? {
        Value::List(l) => Ok(l),
        Value::Null => Ok(List::new()),
        other => Ok(vec![other]),
    }
}

/// Shortcut: a one-element kwargs dictionary builder.
///
/// ```
/// use fahrbahn_rt::kwargs;
/// let kw = kwargs([("a", 1.into()), ("b", "x".into())]);
/// assert_eq!(kw.len(), 2);
/// ```
pub fn kwargs<const N: usize>(pairs: [(&str, Value); N]) -> Dict {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}
