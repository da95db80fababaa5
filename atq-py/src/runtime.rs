//! The one tokio runtime, and how a blocking Python call waits on it.
//!
//! A blocking method spawns its core future on the runtime and waits for it in short slices
//! with the GIL released ([`Python::detach`]). Between slices it re-attaches to deliver progress
//! events to the user's callback and to run `py.check_signals()`, so Ctrl-C is noticed within
//! [`TICK`]. On KeyboardInterrupt (or an exception from the callback) the future is aborted —
//! dropping it makes the core roll back what it created — and the call waits for the
//! director's background cleanup before it raises. A second Ctrl-C stops that wait (`atq
//! prune` removes whatever is left).

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::time::Duration;

use pyo3::prelude::*;
use tokio::runtime::Runtime;
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};

use atq_core::{Director, Event};

use crate::error::{self, AtqError};

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

/// Work to run when a call is cancelled, before the call raises (for instance: tear down).
pub(crate) type OnCancel = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Who hears the progress events of one call: a Python callable and, optionally, the one task
/// it cares about (a director may run other tasks from other threads at the same time).
pub(crate) struct Listener {
    rx: broadcast::Receiver<Event>,
    callback: Py<PyAny>,
    task: Option<String>,
}

impl Listener {
    /// Subscribes to `director`'s events now, before the call starts, so none is missed.
    pub(crate) fn new(director: &Director, callback: Option<Py<PyAny>>, task: Option<String>) -> Option<Listener> {
        callback.map(|callback| Listener { rx: director.subscribe(), callback, task })
    }

    fn wants(&self, event: &Event) -> bool {
        self.task.as_deref().is_none_or(|t| event.task() == t)
    }

    /// The next event this listener wants; never resolves if the channel closed.
    async fn next(&mut self) -> Event {
        loop {
            match self.rx.recv().await {
                Ok(event) if self.wants(&event) => return event,
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => std::future::pending::<()>().await,
            }
        }
    }

    fn deliver(&self, py: Python<'_>, event: &Event) -> PyResult<()> {
        let dict = crate::convert::json_to_py(py, &event.to_json())?;
        self.callback.call1(py, (dict,))?;
        Ok(())
    }

    /// Delivers the events already sent (those of a call that just finished).
    fn drain(&mut self, py: Python<'_>) -> PyResult<()> {
        loop {
            match self.rx.try_recv() {
                Ok(event) if self.wants(&event) => self.deliver(py, &event)?,
                Ok(_) | Err(TryRecvError::Lagged(_)) => {}
                Err(TryRecvError::Empty | TryRecvError::Closed) => return Ok(()),
            }
        }
    }
}

enum Step<T> {
    Done(Result<atq_core::Result<T>, tokio::task::JoinError>),
    Event(Event),
    Tick,
}

/// Runs `fut` on the runtime and waits for it, GIL released, interruptible, delivering
/// events to `listener`. Core errors become atq's exception classes.
pub(crate) fn block_on<T, F>(
    py: Python<'_>,
    director: Option<&Director>,
    mut listener: Option<Listener>,
    on_cancel: Option<OnCancel>,
    fut: F,
) -> PyResult<T>
where
    F: Future<Output = atq_core::Result<T>> + Send + 'static,
    T: Send + 'static,
{
    let rt = runtime();
    let mut handle = rt.spawn(fut);
    loop {
        let rx = listener.as_mut();
        let step = py.detach(|| {
            rt.block_on(async {
                let event = async {
                    match rx {
                        Some(l) => l.next().await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    biased;
                    r = &mut handle => Step::Done(r),
                    e = event => Step::Event(e),
                    () = tokio::time::sleep(TICK) => Step::Tick,
                }
            })
        });
        let interrupted = match step {
            Step::Done(result) => {
                let drained = listener.as_mut().map_or(Ok(()), |l| l.drain(py));
                let value = match result {
                    Ok(r) => r.map_err(error::to_py),
                    Err(e) => Err(AtqError::new_err(format!("internal error in atq (please report it): {e}"))),
                };
                return match (value, drained) {
                    (Ok(v), Err(callback_err)) => {
                        // The callback failed after the work finished: undo it as a cancel would
                        // (a dropped Deployment tears itself down in the background) and raise.
                        let director = director.cloned();
                        wait_cleanup(
                            py,
                            rt.spawn(async move {
                                drop(v);
                                if let Some(director) = director {
                                    director.settled().await;
                                }
                            }),
                        );
                        Err(callback_err)
                    }
                    (value, _) => value,
                };
            }
            Step::Event(event) => listener.as_ref().map_or(Ok(()), |l| l.deliver(py, &event)),
            Step::Tick => py.check_signals(),
        };
        if let Err(err) = interrupted {
            cancel(py, director, handle, on_cancel);
            return Err(err);
        }
    }
}

/// Aborts the work (its future is dropped: the core rolls back), runs `on_cancel`, and waits
/// for the director's background cleanup — until it ends or a second Ctrl-C.
fn cancel<T: Send + 'static>(
    py: Python<'_>,
    director: Option<&Director>,
    handle: tokio::task::JoinHandle<atq_core::Result<T>>,
    on_cancel: Option<OnCancel>,
) {
    let rt = runtime();
    handle.abort();
    let director = director.cloned();
    let cleanup = rt.spawn(async move {
        // A result that raced the abort is dropped here, in the runtime.
        drop(handle.await);
        if let Some(work) = on_cancel {
            work.await;
        }
        if let Some(director) = director {
            director.settled().await;
        }
    });
    wait_cleanup(py, cleanup);
}

/// Waits for a cleanup to finish, GIL released, until it ends or a Ctrl-C.
fn wait_cleanup(py: Python<'_>, mut cleanup: tokio::task::JoinHandle<()>) {
    let rt = runtime();
    loop {
        let finished = py.detach(|| rt.block_on(async { tokio::time::timeout(TICK, &mut cleanup).await.is_ok() }));
        if finished {
            return;
        }
        if py.check_signals().is_err() {
            // A second Ctrl-C: leave the cleanup running in the background; the caller raises
            // the first interrupt.
            return;
        }
    }
}

/// Turns a Rust result into the Python value an awaitable resolves to.
pub(crate) type Convert<T> = Box<dyn FnOnce(Python<'_>, T) -> PyResult<Py<PyAny>> + Send>;

/// Runs `fut` on the runtime and returns an `asyncio.Future` of the running loop that
/// resolves to `convert(result)` (or raises atq's exception). Events go to the listener's
/// callback on the loop (`call_soon_threadsafe`). Cancelling the asyncio future aborts the work:
/// the core rolls back in the background.
pub(crate) fn to_asyncio<'py, T, F>(
    py: Python<'py>,
    mut listener: Option<Listener>,
    fut: F,
    convert: Convert<T>,
) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = atq_core::Result<T>> + Send + 'static,
    T: Send + 'static,
{
    let event_loop = py.import("asyncio")?.call_method0("get_running_loop")?.unbind();
    let future = event_loop.bind(py).call_method0("create_future")?;
    let (loop_ref, future_ref) = (event_loop.clone_ref(py), future.clone().unbind());
    let handle = runtime().spawn(async move {
        let mut work = std::pin::pin!(fut);
        let result = loop {
            let event = async {
                match listener.as_mut() {
                    Some(l) => l.next().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                r = &mut work => break r,
                e = event => Python::attach(|py| {
                    if let Some(l) = &listener {
                        schedule_event(py, &loop_ref, l, &e);
                    }
                }),
            }
        };
        Python::attach(|py| {
            if let Some(l) = listener.as_mut() {
                while let Ok(e) = l.rx.try_recv() {
                    if l.wants(&e) {
                        schedule_event(py, &loop_ref, l, &e);
                    }
                }
            }
            let (value, exc) = match result.map_err(error::to_py).and_then(|v| convert(py, v)) {
                Ok(v) => (v, py.None()),
                Err(e) => (py.None(), e.into_value(py).into_any()),
            };
            let resolve = pyo3::wrap_pyfunction!(resolve_future, py).expect("resolver");
            // The loop may be closed by now: then nobody awaits the result.
            let _ = loop_ref.call_method1(py, "call_soon_threadsafe", (resolve, future_ref, value, exc));
        });
    });
    let abort = Py::new(py, AbortOnCancel { handle: handle.abort_handle() })?;
    future.call_method1("add_done_callback", (abort,))?;
    Ok(future)
}

fn schedule_event(py: Python<'_>, event_loop: &Py<PyAny>, listener: &Listener, event: &Event) {
    if let Ok(dict) = crate::convert::json_to_py(py, &event.to_json()) {
        let _ = event_loop.call_method1(py, "call_soon_threadsafe", (listener.callback.clone_ref(py), dict));
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

/// The done-callback of an asyncio future: aborts the Rust work when the future was cancelled.
#[pyclass(module = "atq._atq", frozen)]
struct AbortOnCancel {
    handle: tokio::task::AbortHandle,
}

#[pymethods]
impl AbortOnCancel {
    fn __call__(&self, future: &Bound<'_, PyAny>) -> PyResult<()> {
        if future.call_method0("cancelled")?.extract::<bool>()? {
            self.handle.abort();
        }
        Ok(())
    }
}
