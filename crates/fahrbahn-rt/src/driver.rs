//! The one driver loop: moves bytes between a byte stream and any sans-IO
//! [`Machine`] of the core, arms its timer, and performs the transport
//! close. Every runtime adapter and every user-facing type goes through it.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use fahrbahn_core::{CloseOrder, Machine};
use futures_io::{AsyncRead, AsyncWrite};

use crate::runtime::{AsyncTimer, ExecutorHandle};

/// Size of the read buffer: one per thread, shared by every connection the
/// thread drives (see [`read_into`]).
const READ_BUF: usize = 64 << 10;

/// Input without an event that one poll reads, at most (one read): past it the
/// driver wakes itself and yields, so that a peer that floods us with
/// input that makes no event (pings, one huge message) cannot keep the
/// executor's thread from the other connections. (tokio's cooperative
/// budget would only step in after 128 reads, 8 MiB; smol and async-std
/// have none.)
const READ_PER_POLL: usize = READ_BUF;

/// Buffers gathered into one vectored write, at most.
const MAX_SLICES: usize = 16;

/// Written-out buffers up to this capacity are kept for the next output.
const RECYCLE_MAX: usize = 64 << 10;

/// The default read-side high-water mark (1 MiB): a connection stops reading
/// while more than this many bytes of its replies to the peer's input are
/// queued and unsent (see [`Driver::set_high_water`]).
pub(crate) const DEFAULT_HIGH_WATER: usize = 1 << 20;

thread_local! {
    /// The thread's read buffer. Bytes read are handed to the machine in the
    /// same poll, so nothing stays in it between polls and an idle
    /// connection costs no buffer at all.
    static READ_SCRATCH: std::cell::Cell<Option<Box<[u8]>>> = const { std::cell::Cell::new(None) };
}

/// Reads once from `io` into the thread's read buffer and hands what was
/// read to `consume`: `Ok(0)` is the end of the stream.
///
/// A transport that is itself driven by a [`Driver`] on the same thread
/// finds the buffer taken and reads into one of its own for that poll.
fn read_into<S: AsyncRead + Unpin, T>(
    io: &mut S,
    cx: &mut Context<'_>,
    consume: impl FnOnce(&[u8]) -> T,
) -> Poll<io::Result<T>> {
    let mut buf = READ_SCRATCH
        .take()
        .unwrap_or_else(|| vec![0; READ_BUF].into_boxed_slice());
    let result = match Pin::new(io).poll_read(cx, &mut buf) {
        Poll::Ready(Ok(n)) => Poll::Ready(Ok(consume(&buf[..n]))),
        Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
        Poll::Pending => Poll::Pending,
    };
    READ_SCRATCH.set(Some(buf));
    result
}

/// Who is waiting to write: the reading side (pongs, close replies) or the
/// writing side of a split connection. The transport keeps one write waker
/// only, so whoever makes progress wakes the other.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Side {
    Reader = 0,
    Writer = 1,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shutdown {
    /// The connection is still running.
    Running,
    /// Flushing the last bytes (close frame, HTTP error).
    Flushing,
    /// Waiting for the peer to end the stream (or the linger deadline).
    Lingering,
    /// Closing our write side.
    Closing,
    Done,
}

/// A state machine and its transport.
#[derive(Debug)]
pub(crate) struct Driver<S, M> {
    pub(crate) io: S,
    pub(crate) conn: M,
    /// The runtime's clock, timers and tasks.
    pub(crate) exec: ExecutorHandle,
    /// Created on first use.
    timer: Option<Pin<Box<dyn AsyncTimer>>>,
    armed: Option<Instant>,
    /// Output taken from the machine, in order; `out_pos` bytes of the
    /// first buffer are written.
    out: VecDeque<Vec<u8>>,
    out_pos: usize,
    /// An empty buffer for the machine's next output.
    spare: Vec<u8>,
    /// Bytes were written since the last successful flush.
    unflushed: bool,
    write_wakers: [Option<Waker>; 2],
    shutdown: Shutdown,
    /// While flushing the last bytes: when to give up on a peer that does
    /// not read them.
    flush_deadline: Option<Instant>,
    /// Reading pauses while more than this many bytes of replies are unsent.
    high_water: usize,
    /// Reading pauses while the owner says so (see [`Driver::hold_reading`]).
    held: bool,
    /// Unsent bytes the machine produced while handling input (an upper
    /// bound: the growth of the queued output across each read, capped by
    /// what is still queued).
    reply_debt: usize,
}

impl<S: AsyncRead + AsyncWrite + Unpin, M: Machine> Driver<S, M> {
    pub(crate) fn new(io: S, conn: M, exec: ExecutorHandle) -> Self {
        Self {
            io,
            conn,
            exec,
            timer: None,
            armed: None,
            out: VecDeque::new(),
            out_pos: 0,
            spare: Vec::new(),
            unflushed: false,
            write_wakers: [None, None],
            shutdown: Shutdown::Running,
            flush_deadline: None,
            high_water: DEFAULT_HIGH_WATER,
            held: false,
            reply_debt: 0,
        }
    }

    /// Sets the read-side high-water mark: reading pauses while more than
    /// `bytes` of output produced in answer to the peer's input (pongs,
    /// automatic replies) is queued and unsent, and resumes as soon as the
    /// output drains below it. Output the application queues itself does
    /// not pause reading (its own writes wait for the transport instead),
    /// so two peers that both write and read cannot deadlock each other.
    pub(crate) fn set_high_water(&mut self, bytes: usize) {
        self.high_water = bytes;
    }

    /// Bytes queued and unsent: in the driver's buffers and in the machine.
    pub(crate) fn queued_output(&self) -> usize {
        self.pending_output() + self.conn.queued_output()
    }

    /// Pauses reading (`true`) until called with `false`, e.g. while the
    /// application has not taken what was read; timers and writes go on.
    /// The owner wakes the task when it lifts the hold.
    pub(crate) fn hold_reading(&mut self, held: bool) {
        self.held = held;
    }

    /// Whether reading is paused: until the peer takes our replies, or
    /// held by the owner.
    pub(crate) fn read_paused(&self) -> bool {
        self.held || self.reply_debt > self.high_water
    }

    /// The current time on the runtime's clock.
    pub(crate) fn now(&self) -> Instant {
        self.exec.now()
    }

    /// The timer, moved to `deadline`.
    fn timer_at(&mut self, deadline: Instant) -> Pin<&mut dyn AsyncTimer> {
        match &mut self.timer {
            Some(timer) => timer.as_mut().reset(deadline),
            None => self.timer = Some(self.exec.new_timer(deadline)),
        }
        self.timer.as_mut().expect("just set").as_mut()
    }

    /// Bytes queued but not yet written.
    pub(crate) fn pending_output(&self) -> usize {
        self.out.iter().map(Vec::len).sum::<usize>() - self.out_pos
    }

    /// Takes the machine's output, a buffer at a time (large payloads come
    /// in their own buffers, uncopied).
    fn take_output(&mut self) {
        while self.out.len() < MAX_SLICES && self.conn.poll_transmit_chunk(&mut self.spare) > 0 {
            self.out.push_back(std::mem::take(&mut self.spare));
        }
    }

    /// Marks `n` more bytes as written, recycling finished buffers.
    fn advance(&mut self, mut n: usize) {
        while n > 0 {
            let Some(front) = self.out.front() else {
                return;
            };
            let left = front.len() - self.out_pos;
            if n < left {
                self.out_pos += n;
                return;
            }
            n -= left;
            self.out_pos = 0;
            let mut done = self.out.pop_front().expect("front exists");
            if self.spare.capacity() == 0 && done.capacity() <= RECYCLE_MAX {
                done.clear();
                self.spare = done;
            }
        }
    }

    /// Writes everything the connection queued. Ready(Ok) once all of it
    /// is written and flushed.
    pub(crate) fn poll_write_out(
        &mut self,
        cx: &mut Context<'_>,
        side: Side,
    ) -> Poll<io::Result<()>> {
        loop {
            if self.out.is_empty() {
                self.take_output();
                if self.out.is_empty() {
                    break;
                }
            }
            let written = if self.out.len() == 1 {
                Pin::new(&mut self.io).poll_write(cx, &self.out[0][self.out_pos..])
            } else {
                let mut slices = [IoSlice::new(&[]); MAX_SLICES];
                for (i, (slice, buf)) in slices.iter_mut().zip(&self.out).enumerate() {
                    let skip = if i == 0 { self.out_pos } else { 0 };
                    *slice = IoSlice::new(&buf[skip..]);
                }
                let n = self.out.len().min(MAX_SLICES);
                Pin::new(&mut self.io).poll_write_vectored(cx, &slices[..n])
            };
            match written {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => {
                    self.unflushed = true;
                    self.advance(n);
                    self.wake_other_writer(side);
                }
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    self.write_wakers[side as usize] = Some(cx.waker().clone());
                    return Poll::Pending;
                }
            }
        }
        if !self.unflushed {
            return Poll::Ready(Ok(()));
        }
        let flushed = Pin::new(&mut self.io).poll_flush(cx);
        if let Poll::Ready(Ok(())) = flushed {
            self.unflushed = false;
        }
        flushed
    }

    fn wake_other_writer(&mut self, side: Side) {
        let other = 1 - side as usize;
        if let Some(w) = self.write_wakers[other].take() {
            w.wake();
        }
    }

    /// Arms the timer for the connection's next deadline and runs it when
    /// due. Returns true when a timeout was handled.
    fn poll_timer(&mut self, cx: &mut Context<'_>, deadline: Option<Instant>) -> bool {
        let Some(deadline) = deadline else {
            self.armed = None;
            return false;
        };
        if self.armed != Some(deadline) || self.timer.is_none() {
            self.timer_at(deadline);
            self.armed = Some(deadline);
        }
        let timer = self.timer.as_mut().expect("armed");
        if timer.as_mut().poll(cx).is_ready() {
            self.armed = None;
            return true;
        }
        false
    }

    /// Drives the machine until it has an event. After its last event the
    /// transport still needs [`Self::poll_finish`].
    pub(crate) fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<M::Event>> {
        let mut read_this_poll = 0;
        loop {
            if let Some(event) = self.conn.poll_event() {
                if self.conn.is_closed() && self.shutdown == Shutdown::Running {
                    self.shutdown = Shutdown::Flushing;
                }
                return Poll::Ready(Ok(event));
            }
            if self.conn.is_closed() {
                // Closed already reported: nothing more will come.
                return Poll::Pending;
            }
            // Best effort: pongs and handshake bytes go out while we read.
            if let Poll::Ready(Err(e)) = self.poll_write_out(cx, Side::Reader) {
                return self.fail_io(e);
            }
            let queued = self.queued_output();
            self.reply_debt = self.reply_debt.min(queued);
            if self.read_paused() {
                // Read-side backpressure: the peer does not take what we
                // answered, so we take no more of its input. The write
                // waker registered above resumes us when output drains;
                // timers still run.
                if self.poll_timer(cx, self.conn.poll_timeout()) {
                    let now = self.now();
                    self.conn.handle_timeout(now);
                    continue;
                }
                return Poll::Pending;
            }
            if read_this_poll >= READ_PER_POLL {
                // Fairness: the rest in the next poll, after the others.
                self.exec.yield_now(cx);
                return Poll::Pending;
            }
            let conn = &mut self.conn;
            let exec = &self.exec;
            let read = read_into(&mut self.io, cx, |bytes| {
                let now = exec.now();
                if bytes.is_empty() {
                    conn.handle_eof(now);
                } else {
                    conn.handle_bytes(now, bytes);
                }
                read_this_poll += bytes.len();
                now
            });
            match read {
                Poll::Ready(Ok(now)) => {
                    let grown = self.queued_output().saturating_sub(queued);
                    self.reply_debt = self.reply_debt.saturating_add(grown);
                    // Input first, then timers: a pong already received is
                    // never reported as a ping timeout.
                    if self.conn.poll_timeout().is_some_and(|t| t <= now) {
                        self.conn.handle_timeout(now);
                    }
                }
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Poll::Ready(Err(e)) => return self.fail_io(e),
                Poll::Pending => {
                    if self.poll_timer(cx, self.conn.poll_timeout()) {
                        let now = self.now();
                        self.conn.handle_timeout(now);
                        continue;
                    }
                    return Poll::Pending;
                }
            }
        }
    }

    fn fail_io<T>(&mut self, e: io::Error) -> Poll<io::Result<T>> {
        log::debug!("transport failed: {e}");
        self.shutdown = Shutdown::Done;
        Poll::Ready(Err(e))
    }

    /// Ends the transport after the machine's last event: flushes the last
    /// bytes, then either closes our write side and waits for the peer to
    /// close, or waits for the peer to close first (a WebSocket server and
    /// client respectively, as RFC 6455 section 7.1.1 asks); either wait is
    /// bounded by the machine's linger time.
    pub(crate) fn poll_finish(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            match self.shutdown {
                Shutdown::Running => return Poll::Ready(()),
                Shutdown::Done => return Poll::Ready(()),
                Shutdown::Flushing => match self.poll_write_out(cx, Side::Reader) {
                    Poll::Pending => {
                        // A peer that does not read its last bytes is
                        // given up on after the linger time.
                        let deadline = match self.flush_deadline {
                            Some(d) => d,
                            None => {
                                let d = self.now() + self.conn.linger();
                                self.flush_deadline = Some(d);
                                self.armed = None;
                                self.timer_at(d);
                                d
                            }
                        };
                        let timer = self.timer.as_mut().expect("armed");
                        if timer.as_mut().poll(cx).is_pending() {
                            return Poll::Pending;
                        }
                        log::debug!(
                            "the peer did not take the last bytes by {deadline:?}: dropping them"
                        );
                        self.shutdown = Shutdown::Done;
                    }
                    Poll::Ready(Err(_)) => self.shutdown = Shutdown::Done,
                    Poll::Ready(Ok(())) => {
                        self.armed = None;
                        let linger = self.now() + self.conn.linger();
                        self.timer_at(linger);
                        self.shutdown = match self.conn.close_order() {
                            CloseOrder::CloseFirst => Shutdown::Closing,
                            CloseOrder::WaitForPeer => Shutdown::Lingering,
                        };
                    }
                },
                Shutdown::Closing => {
                    if Pin::new(&mut self.io).poll_close(cx).is_pending() {
                        return Poll::Pending;
                    }
                    self.shutdown = match self.conn.close_order() {
                        CloseOrder::CloseFirst => Shutdown::Lingering,
                        CloseOrder::WaitForPeer => Shutdown::Done,
                    };
                }
                Shutdown::Lingering => {
                    let ended = loop {
                        match read_into(&mut self.io, cx, <[u8]>::is_empty) {
                            Poll::Ready(Ok(true)) | Poll::Ready(Err(_)) => break true,
                            Poll::Ready(Ok(false)) => {}
                            Poll::Pending => break false,
                        }
                    };
                    let timed_out = !ended
                        && self
                            .timer
                            .as_mut()
                            .is_some_and(|t| t.as_mut().poll(cx).is_ready());
                    if !ended && !timed_out {
                        return Poll::Pending;
                    }
                    self.shutdown = match self.conn.close_order() {
                        CloseOrder::CloseFirst => Shutdown::Done,
                        CloseOrder::WaitForPeer => Shutdown::Closing,
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::task::{Context, Poll, Waker};
    use std::time::{Duration, Instant};

    use fahrbahn_core::{CloseOrder, Machine};
    use fahrbahn_tokio::TokioIo;
    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

    use super::{Driver, Pin};
    use crate::runtime::{AsyncTimer, BoxFuture, Executor, ExecutorHandle};

    /// A clock that never moves; the test machine has no deadlines.
    #[derive(Debug)]
    struct Still(Instant);

    impl Executor for Still {
        fn now(&self) -> Instant {
            self.0
        }
        fn new_timer(&self, _deadline: Instant) -> Pin<Box<dyn AsyncTimer>> {
            unreachable!("the test machine sets no deadline")
        }
        fn spawn(&self, _future: BoxFuture<'static, ()>) {
            unreachable!("the driver spawns nothing")
        }
    }

    #[allow(clippy::disallowed_methods)] // a base instant for a clock that never moves
    fn exec() -> ExecutorHandle {
        std::sync::Arc::new(Still(Instant::now()))
    }

    /// Answers every byte of input with one byte of output, like a peer
    /// that is pinged without end; it never has events or deadlines.
    #[derive(Debug, Default)]
    struct Answering {
        out: Vec<u8>,
        received: usize,
    }

    impl Machine for Answering {
        type Event = ();
        fn handle_bytes(&mut self, _now: Instant, data: &[u8]) {
            self.received += data.len();
            self.out.extend_from_slice(data);
        }
        fn handle_eof(&mut self, _now: Instant) {}
        fn handle_timeout(&mut self, _now: Instant) {}
        fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> usize {
            let n = self.out.len();
            buf.append(&mut self.out);
            n
        }
        fn queued_output(&self) -> usize {
            self.out.len()
        }
        fn poll_event(&mut self) -> Option<()> {
            None
        }
        fn poll_timeout(&self) -> Option<Instant> {
            None
        }
        fn is_closed(&self) -> bool {
            false
        }
        fn close_order(&self) -> CloseOrder {
            CloseOrder::CloseFirst
        }
        fn linger(&self) -> Duration {
            Duration::ZERO
        }
    }

    const PIPE: usize = 16 << 10;
    const MARK: usize = 256 << 10;

    /// The peer writes as long as the pipe takes it and the driver runs;
    /// returns once neither makes progress. Polled by hand, with no clock.
    fn flood(
        driver: &mut Driver<TokioIo<tokio::io::DuplexStream>, Answering>,
        peer: &mut tokio::io::DuplexStream,
        max: &mut usize,
    ) {
        let mut cx = Context::from_waker(Waker::noop());
        let chunk = [0u8; 4096];
        loop {
            let before = driver.conn.received;
            let wrote = matches!(
                Pin::new(&mut *peer).poll_write(&mut cx, &chunk),
                Poll::Ready(Ok(_))
            );
            assert!(driver.poll_event(&mut cx).is_pending());
            *max = (*max).max(driver.queued_output());
            if !wrote && driver.conn.received == before {
                return;
            }
        }
    }

    #[test]
    fn reading_pauses_above_the_high_water_mark_and_resumes_when_output_drains() {
        let (mut peer, ours) = tokio::io::duplex(PIPE);
        let mut driver = Driver::new(TokioIo(ours), Answering::default(), exec());
        driver.set_high_water(MARK);
        let mut max = 0;
        flood(&mut driver, &mut peer, &mut max);
        // The peer reads nothing: we stopped reading just past the mark
        // (by at most one read, which the pipe bounds).
        assert!(driver.read_paused());
        assert!(max <= MARK + PIPE, "{max}");
        let received = driver.conn.received;
        assert!(received <= MARK + 3 * PIPE, "{received}");

        // The peer reads everything: output drains, reading resumes.
        let mut cx = Context::from_waker(Waker::noop());
        let mut sink = vec![0u8; 64 << 10];
        let mut drained = 0;
        for _ in 0..10_000 {
            let mut buf = ReadBuf::new(&mut sink);
            if let Poll::Ready(Ok(())) = Pin::new(&mut peer).poll_read(&mut cx, &mut buf) {
                drained += buf.filled().len();
            }
            let _ = driver.poll_event(&mut cx);
            if !driver.read_paused() && driver.conn.received > received {
                break;
            }
        }
        assert!(!driver.read_paused());
        assert!(driver.conn.received > received, "reading resumed");
        assert!(drained > 0);
        // And the bound holds again under a second flood.
        flood(&mut driver, &mut peer, &mut max);
        assert!(max <= MARK + PIPE, "{max}");
    }

    /// Counts its wakes.
    #[derive(Default)]
    struct Wakes(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for Wakes {
        fn wake(self: std::sync::Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &std::sync::Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    #[test]
    fn a_poll_reads_a_bounded_amount_of_input_without_events_then_yields() {
        const INPUT: usize = 4 << 20;
        let (mut peer, ours) = tokio::io::duplex(INPUT);
        let mut driver = Driver::new(TokioIo(ours), Answering::default(), exec());
        // No backpressure in the way: only fairness limits this poll.
        driver.set_high_water(usize::MAX);
        let mut cx = Context::from_waker(Waker::noop());
        let input = vec![0u8; INPUT];
        assert!(matches!(
            Pin::new(&mut peer).poll_write(&mut cx, &input),
            Poll::Ready(Ok(INPUT))
        ));
        let wakes = std::sync::Arc::new(Wakes::default());
        let waker = Waker::from(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        let mut polls = 0;
        while driver.conn.received < INPUT {
            let before = driver.conn.received;
            assert!(driver.poll_event(&mut cx).is_pending());
            let read = driver.conn.received - before;
            assert!(read > 0 && read <= super::READ_PER_POLL, "{read}");
            polls += 1;
        }
        // Every poll that stopped with input still waiting woke the task.
        assert_eq!(polls, INPUT / super::READ_PER_POLL);
        assert!(wakes.0.load(std::sync::atomic::Ordering::Relaxed) >= polls - 1);
    }
}
