//! The one tokio runtime, and how a Python call waits on the core.
//!
//! A call is a [`Call`]: its core future (or run stream) is spawned on the runtime together with
//! the forwarding of its events ([`Item`]s into a channel). The calling thread reads that channel
//! in short slices with the GIL released ([`Python::detach`]), delivering each event to the
//! user's callbacks ([`Sink`]) and running `py.check_signals()` between slices, so Ctrl-C is
//! noticed within [`TICK`].
//!
//! **Ctrl-C** follows the core's protocol ([`atq_core::run`]), never one of its own: a
//! KeyboardInterrupt triggers the call's [`Interrupt`] and the call keeps being driven, so the
//! core's events ("interrupted: removing what was deployed", the teardown, "cleanup abandoned")
//! reach `on_event` — or a line on stderr when there is no callback; another Ctrl-C triggers it
//! again (the core then stops waiting for the cleanup). When the call ends, KeyboardInterrupt is
//! raised. Calls that leave nothing to clean up (reads) are [`OnInterrupt::Stop`]ped at once.
//! An exception raised by a callback triggers the interrupt as a Ctrl-C would, and is raised
//! once the call ended.

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures_util::StreamExt;
use pyo3::exceptions::PyKeyboardInterrupt;
use pyo3::prelude::*;
use tokio::runtime::Runtime;
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tokio::sync::mpsc;

use atq_core::event::{RunEvent, RunEventKind};
use atq_core::labels::Role;
use atq_core::run::{FollowLogs, Run, RunItem};
use atq_core::{Director, Event, Interrupt};

use crate::error::{self, AtqError};
use crate::journal::Journal;

/// How long the calling thread waits, GIL released, before it checks for signals again.
const TICK: Duration = Duration::from_millis(50);

/// The process-wide tokio runtime, created on first use.
pub(crate) fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("atq-tokio")
            .build()
            .expect("cannot start atq's tokio runtime")
    })
}

/// Runs `fut` to the end, GIL released; Ctrl-C stops it at once (for calls that create nothing
/// on the engine: connecting, reading). Core errors become atq's exception classes.
pub(crate) fn run_blocking<T, F>(py: Python<'_>, fut: F) -> PyResult<T>
where
    F: Future<Output = atq_core::Result<T>> + Send + 'static,
    T: Send + 'static,
{
    Call::future(None, fut).wait(py, &Sink::silent(), OnInterrupt::Stop)
}

/// [`run_blocking`] under its former signature, which `cluster.rs` still calls
/// (`block_on(py, None, None, None, fut)`): the three unused arguments can only be `None`.
pub(crate) fn block_on<T, F>(
    py: Python<'_>,
    _director: Option<&Director>,
    _listener: Option<std::convert::Infallible>,
    _on_cancel: Option<std::convert::Infallible>,
    fut: F,
) -> PyResult<T>
where
    F: Future<Output = atq_core::Result<T>> + Send + 'static,
    T: Send + 'static,
{
    run_blocking(py, fut)
}

/// What a Ctrl-C does to a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnInterrupt {
    /// Trigger the call's [`Interrupt`] and keep driving it: the core cleans up, then the call
    /// raises KeyboardInterrupt.
    Protocol,
    /// Stop the call at once (it created nothing that needs removing) and raise.
    Stop,
}

/// One item a call's producer sends: an event, or (last) the result.
pub(crate) enum Item<T> {
    /// A progress event or a log line.
    Event(RunEvent),
    /// The call's result.
    Done(atq_core::Result<T>),
}

/// The director events one call listens to: those of its task.
pub(crate) struct Events {
    rx: broadcast::Receiver<Event>,
    task: String,
}

impl Events {
    /// Subscribes to `director`'s events about `task` now, before the call starts, so none is missed.
    pub(crate) fn of(director: &Director, task: &str) -> Self {
        Events { rx: director.subscribe(), task: task.to_owned() }
    }

    /// The next event about the task; never resolves once the channel closed.
    async fn next(&mut self) -> Event {
        loop {
            match self.rx.recv().await {
                Ok(event) if event.task() == self.task => return event,
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => std::future::pending::<()>().await,
            }
        }
    }

    /// The events already sent (those of a call that just finished).
    fn try_next(&mut self) -> Option<Event> {
        loop {
            match self.rx.try_recv() {
                Ok(event) if event.task() == self.task => return Some(event),
                Ok(_) | Err(TryRecvError::Lagged(_)) => {}
                Err(TryRecvError::Empty | TryRecvError::Closed) => return None,
            }
        }
    }
}

/// What a call's producer does with its events before the Python side sees them: the director's
/// [`Journal`] notes the deploys and captures log lines, and log lines the caller did not ask
/// for are dropped.
#[derive(Clone)]
pub(crate) struct Observer {
    journal: Arc<Journal>,
    /// Whose log lines reach the callbacks.
    logs: FollowLogs,
}

impl Observer {
    /// Notes this call's events in `journal`; forwards the log lines of `logs`.
    pub(crate) fn new(journal: Arc<Journal>, logs: FollowLogs) -> Self {
        Observer { journal, logs }
    }

    /// Whether the event goes on to the callbacks.
    fn observe(&self, event: &RunEvent) -> bool {
        match &event.kind {
            RunEventKind::Progress(Event::NetworkCreated { task, deploy_id, .. }) => {
                self.journal.deployed(task, deploy_id);
                true
            }
            RunEventKind::Log(record) => {
                self.journal.log(record);
                match self.logs {
                    FollowLogs::None => false,
                    FollowLogs::Master => record.role == Role::Master,
                    FollowLogs::All => true,
                }
            }
            _ => true,
        }
    }
}

/// A call running on the runtime: its items, and its interrupt.
pub(crate) struct Call<T> {
    items: mpsc::UnboundedReceiver<Item<T>>,
    interrupt: Interrupt,
    producer: tokio::task::JoinHandle<()>,
}

impl<T: Send + 'static> Call<T> {
    /// Spawns `fut`, forwarding the director events `events` (if any) as they come.
    pub(crate) fn future<F>(events: Option<(Events, Observer)>, fut: F) -> Self
    where
        F: Future<Output = atq_core::Result<T>> + Send + 'static,
    {
        Self::interruptible(events, move |_| fut)
    }

    /// Spawns the future `make` builds from the call's interrupt (for the core's `*_interruptible`
    /// calls), forwarding the director events `events` (if any) as they come.
    pub(crate) fn interruptible<F>(events: Option<(Events, Observer)>, make: impl FnOnce(Interrupt) -> F) -> Self
    where
        F: Future<Output = atq_core::Result<T>> + Send + 'static,
    {
        Self::interruptible_by(Interrupt::new(), events, make)
    }

    /// [`interruptible`](Self::interruptible) under an interrupt the caller already holds.
    pub(crate) fn interruptible_by<F>(
        interrupt: Interrupt,
        events: Option<(Events, Observer)>,
        make: impl FnOnce(Interrupt) -> F,
    ) -> Self
    where
        F: Future<Output = atq_core::Result<T>> + Send + 'static,
    {
        let fut = make(interrupt.clone());
        let (tx, items) = mpsc::unbounded_channel();
        let producer = runtime().spawn(async move {
            let Some((mut events, observer)) = events else {
                let _ = tx.send(Item::Done(fut.await));
                return;
            };
            let forward = |event: Event| {
                let event = RunEvent::progress(event);
                if observer.observe(&event) {
                    let _ = tx.send(Item::Event(event));
                }
            };
            let mut fut = std::pin::pin!(fut);
            let result = loop {
                tokio::select! {
                    biased;
                    event = events.next() => forward(event),
                    result = &mut fut => break result,
                }
            };
            while let Some(event) = events.try_next() {
                forward(event);
            }
            let _ = tx.send(Item::Done(result));
        });
        Call { items, interrupt, producer }
    }
}

impl Call<Box<atq_core::RunReport>> {
    /// Spawns the run that `make` builds from the call's interrupt, forwarding its stream.
    pub(crate) fn run(observer: Observer, make: impl FnOnce(Interrupt) -> Run) -> Self {
        let interrupt = Interrupt::new();
        let mut run = make(interrupt.clone());
        let (tx, items) = mpsc::unbounded_channel();
        let producer = runtime().spawn(async move {
            while let Some(item) = run.next().await {
                match item {
                    RunItem::Event(event) => {
                        if observer.observe(&event) {
                            let _ = tx.send(Item::Event(event));
                        }
                    }
                    RunItem::Done(result) => {
                        let _ = tx.send(Item::Done(result));
                        return;
                    }
                }
            }
        });
        Call { items, interrupt, producer }
    }
}

/// How a driven call ended: its result, and the first Ctrl-C or callback exception.
struct Ended<T> {
    result: atq_core::Result<T>,
    failure: Option<PyErr>,
}

impl<T: Send + 'static> Call<T> {
    /// Waits for the call, GIL released, delivering its events to `sink`; a Ctrl-C (or an
    /// exception of a callback) does what `on_interrupt` says.
    pub(crate) fn wait(mut self, py: Python<'_>, sink: &Sink, on_interrupt: OnInterrupt) -> PyResult<T> {
        let ended = self.drive(py, sink, on_interrupt, &mut true)?;
        finish(ended.result, ended.failure)
    }

    /// [`wait`](Self::wait) with [`OnInterrupt::Protocol`] for a call whose value must be undone
    /// when an interrupt came as it finished (a deploy that completed as Ctrl-C came): `undo`
    /// makes the call that removes it, under the same interrupt (so another Ctrl-C stops waiting
    /// for that removal, as it would for a rollback).
    pub(crate) fn wait_or_undo(
        mut self,
        py: Python<'_>,
        sink: &Sink,
        undo: impl FnOnce(T, Interrupt) -> Call<()>,
    ) -> PyResult<T> {
        let mut callbacks = true;
        let ended = self.drive(py, sink, OnInterrupt::Protocol, &mut callbacks)?;
        match ended {
            Ended { result: Ok(value), failure: Some(failure) } => {
                let undone =
                    undo(value, self.interrupt.clone()).drive(py, sink, OnInterrupt::Protocol, &mut callbacks)?;
                Err(raised(undone.result, failure))
            }
            Ended { result, failure } => finish(result, failure),
        }
    }

    fn drive(
        &mut self,
        py: Python<'_>,
        sink: &Sink,
        on_interrupt: OnInterrupt,
        callbacks: &mut bool,
    ) -> PyResult<Ended<T>> {
        let rt = runtime();
        let mut failure: Option<PyErr> = None;
        loop {
            let item = py.detach(|| rt.block_on(async { tokio::time::timeout(TICK, self.items.recv()).await }));
            match item {
                Ok(Some(Item::Event(event))) if *callbacks => {
                    if let Err(err) = sink.deliver(py, &event) {
                        // A Ctrl-C that came while a callback ran is a Ctrl-C; any other exception
                        // breaks the callback, which is not called again. Either stops the call.
                        if !err.is_instance_of::<PyKeyboardInterrupt>(py) {
                            *callbacks = false;
                        }
                        self.interrupt.trigger();
                        failure.get_or_insert(err);
                    }
                }
                Ok(Some(Item::Event(_))) | Err(_) => {}
                Ok(Some(Item::Done(result))) => return Ok(Ended { result, failure }),
                Ok(None) => {
                    return Err(AtqError::new_err(
                        "internal error in atq (please report it): a call ended without a result",
                    ))
                }
            }
            if let Err(err) = py.check_signals() {
                match on_interrupt {
                    OnInterrupt::Stop => {
                        // Dropping the future is all there is to do (it created nothing).
                        self.producer.abort();
                        return Err(err);
                    }
                    OnInterrupt::Protocol => {
                        self.interrupt.trigger();
                        failure.get_or_insert(err);
                    }
                }
            }
        }
    }
}

/// How a call that ended raises: the first Ctrl-C or callback exception wins over its result;
/// an interrupted call raises KeyboardInterrupt with the core's message (`abandoned` says whether
/// the cleanup was given up).
fn finish<T>(result: atq_core::Result<T>, failure: Option<PyErr>) -> PyResult<T> {
    match failure {
        Some(failure) => Err(raised(result, failure)),
        None => result.map_err(error::to_py),
    }
}

/// The exception of a call interrupted by `failure` (a KeyboardInterrupt, or a callback's
/// exception): for a Ctrl-C, the core's `Interrupted` when it says how the cleanup ended. A value
/// that raced the interrupt is dropped here (the core's drop removes a deployment).
fn raised<T>(result: atq_core::Result<T>, failure: PyErr) -> PyErr {
    Python::attach(|py| match result {
        Err(e @ atq_core::Error::Interrupted { .. }) if failure.is_instance_of::<PyKeyboardInterrupt>(py) => {
            error::to_py(e)
        }
        _ => failure,
    })
}

/// Where one call's events go: the Python callbacks, or (without `on_event`) a line on stderr for
/// what an interrupt does.
pub(crate) struct Sink {
    on_event: Option<Py<PyAny>>,
    on_log: Option<Py<PyAny>>,
}

impl Sink {
    /// Progress events to `on_event` (each a dict, [`RunEvent::to_json`]), log lines to `on_log`.
    pub(crate) fn new(on_event: Option<Py<PyAny>>, on_log: Option<Py<PyAny>>) -> Self {
        Sink { on_event, on_log }
    }

    /// No callbacks (interrupt lines still go to stderr).
    pub(crate) fn silent() -> Self {
        Sink { on_event: None, on_log: None }
    }

    /// Hands `event` to its callback.
    fn deliver(&self, py: Python<'_>, event: &RunEvent) -> PyResult<()> {
        let callback = match &event.kind {
            RunEventKind::Log(_) => &self.on_log,
            _ => &self.on_event,
        };
        match callback {
            Some(callback) => {
                let dict = crate::convert::json_to_py(py, &event.to_json())?;
                callback.call1(py, (dict,))?;
            }
            None => {
                if let RunEventKind::Progress(progress) = &event.kind {
                    if let Some(line) = interrupt_line(progress) {
                        let _ = py.import("sys").and_then(|sys| sys.getattr("stderr")?.call_method1("write", (line,)));
                    }
                }
            }
        }
        Ok(())
    }

    /// The callbacks, for a call delivering on an asyncio loop.
    fn clone_ref(&self, py: Python<'_>) -> Sink {
        Sink {
            on_event: self.on_event.as_ref().map(|c| c.clone_ref(py)),
            on_log: self.on_log.as_ref().map(|c| c.clone_ref(py)),
        }
    }
}

/// The stderr line for what an interrupt does, when nobody listens to the events.
fn interrupt_line(event: &Event) -> Option<String> {
    match event {
        Event::Interrupted { task } => {
            Some(format!("atq: {task}: interrupted: removing what was deployed (Ctrl-C again to stop waiting)\n"))
        }
        Event::CleanupAbandoned { task } => Some(format!(
            "atq: {task}: stopped waiting for the cleanup: it goes on in the background until Python exits \
             (at most {} s); `atq prune` removes what is left\n",
            crate::EXIT_WAIT.as_secs()
        )),
        _ => None,
    }
}

/// Turns a Rust result into the Python value an awaitable resolves to.
pub(crate) type Convert<T> = Box<dyn FnOnce(Python<'_>, T) -> PyResult<Py<PyAny>> + Send>;

/// Returns an `asyncio.Future` of the running loop that resolves to `convert(result)` of the
/// call (or raises atq's exception). Events go to the sink's callbacks on the loop
/// (`call_soon_threadsafe`). Cancelling the asyncio future drops the call: the core removes what
/// it created on atq's cleanup thread (as for a dropped handle; nobody waits for it).
pub(crate) fn to_asyncio<'py, T>(
    py: Python<'py>,
    call: Call<T>,
    sink: &Sink,
    convert: Convert<T>,
) -> PyResult<Bound<'py, PyAny>>
where
    T: Send + 'static,
{
    let event_loop = py.import("asyncio")?.call_method0("get_running_loop")?.unbind();
    let future = event_loop.bind(py).call_method0("create_future")?;
    let (loop_ref, future_ref) = (event_loop.clone_ref(py), future.clone().unbind());
    let sink = sink.clone_ref(py);
    let Call { mut items, producer, .. } = call;
    let producer_abort = producer.abort_handle();
    let consumer = runtime().spawn(async move {
        let result = loop {
            match items.recv().await {
                Some(Item::Event(event)) => Python::attach(|py| schedule_event(py, &loop_ref, &sink, &event)),
                Some(Item::Done(result)) => break result,
                None => break Err(atq_core::Error::Cancelled("the call ended without a result".into())),
            }
        };
        Python::attach(|py| {
            let (value, exc) = match result.map_err(error::to_py).and_then(|v| convert(py, v)) {
                Ok(v) => (v, py.None()),
                Err(e) => (py.None(), e.into_value(py).into_any()),
            };
            let resolve = pyo3::wrap_pyfunction!(resolve_future, py).expect("resolver");
            // The loop may be closed by now: then nobody awaits the result.
            let _ = loop_ref.call_method1(py, "call_soon_threadsafe", (resolve, future_ref, value, exc));
        });
    });
    let abort = Py::new(py, AbortOnCancel { handles: vec![producer_abort, consumer.abort_handle()] })?;
    future.call_method1("add_done_callback", (abort,))?;
    Ok(future)
}

fn schedule_event(py: Python<'_>, event_loop: &Py<PyAny>, sink: &Sink, event: &RunEvent) {
    let callback = match &event.kind {
        RunEventKind::Log(_) => &sink.on_log,
        _ => &sink.on_event,
    };
    if let Some(callback) = callback {
        if let Ok(dict) = crate::convert::json_to_py(py, &event.to_json()) {
            let _ = event_loop.call_method1(py, "call_soon_threadsafe", (callback.clone_ref(py), dict));
        }
    }
}

/// Resolves an asyncio future on its loop, unless it was cancelled meanwhile.
#[pyfunction]
fn resolve_future(future: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>, exc: &Bound<'_, PyAny>) -> PyResult<()> {
    if future.call_method0("done")?.extract::<bool>()? {
        return Ok(());
    }
    if exc.is_none() {
        future.call_method1("set_result", (value,))?;
    } else {
        future.call_method1("set_exception", (exc,))?;
    }
    Ok(())
}

/// The done-callback of an asyncio future: drops the Rust work when the future was cancelled.
#[pyclass(module = "atq._atq", frozen)]
struct AbortOnCancel {
    handles: Vec<tokio::task::AbortHandle>,
}

#[pymethods]
impl AbortOnCancel {
    fn __call__(&self, future: &Bound<'_, PyAny>) -> PyResult<()> {
        if future.call_method0("cancelled")?.extract::<bool>()? {
            for handle in &self.handles {
                handle.abort();
            }
        }
        Ok(())
    }
}
