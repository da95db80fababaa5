//! `report.html`.
use crate::results::report::Report;

pub(crate) fn write(report: &Report) -> String {
    format!("<!doctype html><title>{}</title>", report.title)
}
