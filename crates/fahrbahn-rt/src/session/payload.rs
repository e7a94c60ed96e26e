//! What calls, invocations and subscriptions carry, and the one mapping
//! of Rust values (serde) to WAMP `args` and `kwargs`.

use fahrbahn_core::wamp::error::{ERROR_INVALID_ARGUMENT, ERROR_RUNTIME_ERROR};
use fahrbahn_core::wamp::{
    ApplicationError, Dict, List, PublicationId, Value, ValueError, from_value, to_value,
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

    /// A result carrying `value`, mapped to `args`/`kwargs` as
    /// [`to_payload`] does (a struct becomes `kwargs`, a tuple `args`…).
    /// For handlers: a value that cannot be serialized is the handler's
    /// own bug, answered with `wamp.error.runtime_error`.
    ///
    /// ```
    /// # use fahrbahn_rt::CallResult;
    /// #[derive(serde::Serialize)]
    /// struct Sum { total: i64 }
    /// let result = CallResult::typed(&Sum { total: 5 }).unwrap();
    /// assert!(result.args.is_empty());
    /// assert_eq!(result.kwargs["total"], 5.into());
    /// ```
    pub fn typed<T: Serialize + ?Sized>(value: &T) -> Result<Self, ApplicationError> {
        let (args, kwargs) = to_payload(value).map_err(|e| {
            log::error!("a result could not be serialized: {e}");
            ApplicationError::new(ERROR_RUNTIME_ERROR).with_args(vec![
                "the procedure's result could not be serialized".into(),
            ])
        })?;
        Ok(Self::new(args, kwargs))
    }

    /// The first positional result, decoded.
    pub fn first<T: DeserializeOwned>(&self) -> Result<T, Error> {
        let v = self.args.first().cloned().unwrap_or(Value::Null);
        Ok(from_value(v)?)
    }

    /// The result decoded as [`from_payload`] does: a tuple or `Vec`
    /// from `args`, a struct from `kwargs` (or from `args` in field
    /// order), a single value from a one-element `args`.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, Error> {
        Ok(from_payload(&self.args, &self.kwargs)?)
    }
}

/// One item of a call with progressive results
/// ([`Session::call_progressive`](crate::Session::call_progressive)).
#[derive(Debug, Clone, PartialEq)]
pub enum CallProgress {
    /// A progressive result: more follow.
    Progress(CallResult),
    /// The final result: the call is done.
    Final(CallResult),
}

impl CallProgress {
    /// The result, progressive or final.
    pub fn result(&self) -> &CallResult {
        match self {
            CallProgress::Progress(r) | CallProgress::Final(r) => r,
        }
    }

    /// Whether this is the final result.
    pub fn is_final(&self) -> bool {
        matches!(self, CallProgress::Final(_))
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
#[derive(Debug, Clone)]
pub struct Invocation {
    /// Positional arguments.
    pub args: List,
    /// Keyword arguments.
    pub kwargs: Dict,
    /// INVOCATION details (caller, procedure for pattern registrations…).
    pub details: Dict,
    /// Where progressive results go (set by the session for the
    /// invocations it runs).
    pub(super) progress: Option<super::task::ProgressSink>,
}

impl PartialEq for Invocation {
    fn eq(&self, other: &Self) -> bool {
        self.args == other.args && self.kwargs == other.kwargs && self.details == other.details
    }
}

impl Invocation {
    /// An invocation with these arguments (for testing handlers outside a
    /// session: it has nowhere to send progressive results).
    pub fn new(args: List, kwargs: Dict, details: Dict) -> Self {
        Self {
            args,
            kwargs,
            details,
            progress: None,
        }
    }

    /// Whether the caller asked for progressive results
    /// (`receive_progress`, passed on by the router).
    pub fn receive_progress(&self) -> bool {
        self.details
            .get("receive_progress")
            .and_then(Value::as_bool)
            == Some(true)
    }

    /// Sends a progressive result to the caller, ahead of the final result
    /// the handler returns. When the caller did not ask for progressive
    /// results ([`receive_progress`](Self::receive_progress) is false) it
    /// sends nothing and returns `Ok(false)`; `Ok(true)` once queued. Fails
    /// once the call has ended (answered, canceled) or the session has.
    ///
    /// ```no_run
    /// # async fn demo(session: fahrbahn_rt::Session) -> Result<(), fahrbahn_rt::Error> {
    /// use fahrbahn_rt::CallResult;
    /// session
    ///     .register("com.example.count", |inv| async move {
    ///         let n: i64 = inv.decode()?;
    ///         for i in 0..n {
    ///             inv.send_progress(CallResult::args(vec![i.into()]))
    ///                 .map_err(|e| fahrbahn_rt::ApplicationError::new("com.example.gone")
    ///                     .with_args(vec![e.to_string().into()]))?;
    ///         }
    ///         Ok(CallResult::args(vec![n.into()]))
    ///     })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn send_progress(&self, result: CallResult) -> Result<bool, Error> {
        if !self.receive_progress() {
            return Ok(false);
        }
        match &self.progress {
            Some(sink) => sink.send(result).map(|()| true),
            None => Ok(false),
        }
    }

    /// The arguments decoded as [`from_payload`] does (e.g. into a tuple
    /// from `args`, or a struct from `kwargs`); arguments that do not fit
    /// are the caller's mistake, answered with
    /// `wamp.error.invalid_argument`.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, ApplicationError> {
        from_payload(&self.args, &self.kwargs).map_err(|e| {
            ApplicationError::new(ERROR_INVALID_ARGUMENT)
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

    /// The payload decoded as [`from_payload`] does (a struct from
    /// `kwargs`, a tuple from `args`…).
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, Error> {
        Ok(from_payload(&self.args, &self.kwargs)?)
    }
}

/// Maps a Rust value to WAMP `(args, kwargs)`: the one mapping used by
/// typed calls ([`Session::call_typed`](crate::Session::call_typed)),
/// results ([`CallResult::typed`]) and publications
/// ([`Session::publish_typed`](crate::Session::publish_typed)).
///
/// | the value serializes to | `args` | `kwargs` |
/// |---|---|---|
/// | a map: a struct with named fields, a `HashMap`/`BTreeMap` | empty | its entries |
/// | a sequence: a tuple, tuple struct, `Vec`, array | its elements | empty |
/// | nothing: `()`, `None`, a unit struct | empty | empty |
/// | anything else: a number, string, bool, bytes, enum variant | that one value | empty |
///
/// [`from_payload`] is the inverse; a struct with named fields travels as
/// keyword arguments, which is how AutobahnPython's `**kwargs` see it.
///
/// ```
/// use fahrbahn_rt::to_payload;
/// #[derive(serde::Serialize)]
/// struct Order { item: String, qty: u32 }
/// let (args, kwargs) = to_payload(&Order { item: "tea".into(), qty: 2 }).unwrap();
/// assert!(args.is_empty() && kwargs["qty"] == 2.into());
/// let (args, kwargs) = to_payload(&(2, 3)).unwrap();
/// assert_eq!((args.len(), kwargs.len()), (2, 0));
/// let (args, _) = to_payload(&"hello").unwrap();
/// assert_eq!(args, vec!["hello".into()]);
/// ```
pub fn to_payload<T: Serialize + ?Sized>(value: &T) -> Result<(List, Dict), Error> {
    Ok(match to_value(value)? {
        Value::Dict(d) => (List::new(), d),
        Value::List(l) => (l, Dict::new()),
        Value::Null => (List::new(), Dict::new()),
        other => (vec![other], Dict::new()),
    })
}

/// Decodes WAMP `args` and `kwargs` into a Rust value, the inverse of
/// [`to_payload`]:
///
/// 1. with `kwargs` and no `args`: from `kwargs` (a struct with named
///    fields, a map);
/// 2. otherwise from `args` as a list (a tuple, a `Vec`, a struct's fields
///    in order — `kwargs` are then ignored);
/// 3. failing that, with exactly one positional value: from that value
///    (a number, a string, a struct sent as one positional dictionary);
/// 4. with neither: from nothing (`()`, `None`, a struct whose fields all
///    have defaults).
///
/// The first error is reported when nothing fits.
///
/// ```
/// use fahrbahn_rt::{from_payload, kwargs};
/// #[derive(serde::Deserialize, Debug, PartialEq)]
/// struct Order { item: String, qty: u32 }
/// let order: Order = from_payload(&vec![], &kwargs([("item", "tea".into()), ("qty", 2.into())])).unwrap();
/// assert_eq!(order, Order { item: "tea".into(), qty: 2 });
/// let order: Order = from_payload(&vec!["tea".into(), 2.into()], &Default::default()).unwrap();
/// assert_eq!(order.qty, 2);
/// let n: i64 = from_payload(&vec![5.into()], &Default::default()).unwrap();
/// assert_eq!(n, 5);
/// let pair: (i64, String) = from_payload(&vec![1.into(), "a".into()], &Default::default()).unwrap();
/// assert_eq!(pair, (1, "a".to_owned()));
/// ```
pub fn from_payload<T: DeserializeOwned>(args: &List, kwargs: &Dict) -> Result<T, ValueError> {
    if args.is_empty() && !kwargs.is_empty() {
        return from_value(Value::Dict(kwargs.clone()));
    }
    if args.is_empty() {
        // Nothing: `()`/`None`, then an empty map (a struct of defaults),
        // then an empty list.
        return from_value(Value::Null)
            .or_else(|e| from_value(Value::Dict(Dict::new())).map_err(|_| e))
            .or_else(|e| from_value(Value::List(List::new())).map_err(|_| e));
    }
    match from_value(Value::List(args.clone())) {
        Ok(v) => Ok(v),
        Err(e) if args.len() == 1 => from_value(args[0].clone()).map_err(|_| e),
        Err(e) => Err(e),
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
