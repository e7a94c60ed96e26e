//! Two small combinators over the runtime's timers, so the component
//! needs no executor-specific `select!`.

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::Poll;
use std::time::Instant;

use crate::runtime::ExecutorHandle;

/// Which of two futures finished first.
pub(super) enum Either<A, B> {
    /// The first one.
    Left(A),
    /// The second one.
    Right(B),
}

/// Runs both futures; the first to finish wins (the first is polled
/// first), the other is dropped.
pub(super) async fn race<A: Future, B: Future>(a: A, b: B) -> Either<A::Output, B::Output> {
    let mut a = pin!(a);
    let mut b = pin!(b);
    poll_fn(|cx| {
        if let Poll::Ready(x) = a.as_mut().poll(cx) {
            return Poll::Ready(Either::Left(x));
        }
        if let Poll::Ready(y) = b.as_mut().poll(cx) {
            return Poll::Ready(Either::Right(y));
        }
        Poll::Pending
    })
    .await
}

/// Runs `future` until `deadline` on the executor's clock: `None` if the
/// deadline came first (the future is dropped).
pub(super) async fn within<F: Future>(
    executor: &ExecutorHandle,
    deadline: Instant,
    future: F,
) -> Option<F::Output> {
    let mut timer = executor.new_timer(deadline);
    let timeout = poll_fn(move |cx| timer.as_mut().poll(cx));
    match race(future, timeout).await {
        Either::Left(x) => Some(x),
        Either::Right(()) => None,
    }
}
