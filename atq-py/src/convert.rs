//! Conversions between Python values and the core's plain data: JSON-shaped values to Python
//! objects, and seconds (a number or a `datetime.timedelta`) to [`Duration`].

use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use pyo3::IntoPyObjectExt;
use serde_json::Value;

use crate::error::invalid;

/// A JSON value as the Python object `json.loads` would give.
pub(crate) fn json_to_py(py: Python<'_>, value: &Value) -> PyResult<Py<PyAny>> {
    Ok(match value {
        Value::Null => py.None(),
        Value::Bool(b) => b.into_py_any(py)?,
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.into_py_any(py)?,
            (None, Some(u)) => u.into_py_any(py)?,
            _ => n.as_f64().unwrap_or(f64::NAN).into_py_any(py)?,
        },
        Value::String(s) => s.into_py_any(py)?,
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(json_to_py(py, item)?)?;
            }
            list.into_any().unbind()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, v) in map {
                dict.set_item(k, json_to_py(py, v)?)?;
            }
            dict.into_any().unbind()
        }
    })
}

/// Any serialisable core value (`TaskInfo`, `PruneReport`, …) as Python dicts and lists.
pub(crate) fn to_py<T: serde::Serialize>(py: Python<'_>, value: &T) -> PyResult<Py<PyAny>> {
    let json = serde_json::to_value(value).map_err(|e| crate::error::AtqError::new_err(e.to_string()))?;
    json_to_py(py, &json)
}

/// Seconds given as an `int`, a `float` or a `datetime.timedelta`; `field` names the argument
/// in the `ValidationError` raised for a negative, infinite or non-numeric value.
pub(crate) fn seconds(field: &str, value: &Bound<'_, PyAny>) -> PyResult<Duration> {
    let secs: f64 = if value.hasattr("total_seconds")? {
        value.call_method0("total_seconds")?.extract()?
    } else {
        value.extract().map_err(|_| invalid(field, "must be a number of seconds or a datetime.timedelta"))?
    };
    Duration::try_from_secs_f64(secs).map_err(|_| invalid(field, format!("{secs} is not a valid duration in seconds")))
}

/// [`seconds`] for an optional argument.
pub(crate) fn opt_seconds(field: &str, value: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Duration>> {
    match value {
        Some(v) if !v.is_none() => seconds(field, v).map(Some),
        _ => Ok(None),
    }
}

/// A count that must fit a `u32` (replicas, retries).
pub(crate) fn count(field: &str, value: i64) -> PyResult<u32> {
    u32::try_from(value).map_err(|_| invalid(field, format!("{value} is out of range (0 to {})", u32::MAX)))
}
