//! The admin endpoints under `/_emulator/`, for tests and operators on the loopback: they need
//! no signature, so never expose an emulator beyond the machine.
//!
//! | method and path | body | answer |
//! |---|---|---|
//! | `GET /_emulator/health` | | `{"ok":true}` |
//! | `GET /_emulator/stats` | | [`Stats`](crate::Stats) |
//! | `GET /_emulator/faults` | | `{"config": FaultConfig, "rules": [FaultRule]}` |
//! | `PUT /_emulator/faults` | [`FaultConfig`] | as GET |
//! | `POST /_emulator/faults/rules` | a [`FaultRule`] or a list | as GET |
//! | `DELETE /_emulator/faults` | | as GET (everything cleared) |
//! | `POST /_emulator/clock` | `{"advance_ms": N}` | `{"offset_ms": total}` |
//!
//! Other paths under `/_emulator/` answer 404; bad bodies answer 400 with `{"error": …}`.
//!
//! The clock endpoint moves the world's clock forward (boot, stop and terminate deadlines);
//! signature timestamps are still checked against the real clock.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::app::{App, admin_error, lock};
use crate::faults::{FaultConfig, FaultRule};

/// The admin routes.
pub(crate) fn routes() -> axum::Router<Arc<App>> {
    axum::Router::new()
        .route("/_emulator/health", get(|| async { Json(serde_json::json!({ "ok": true })) }))
        .route("/_emulator/stats", get(stats))
        .route("/_emulator/faults", get(faults).put(set_faults).delete(clear_faults))
        .route("/_emulator/faults/rules", post(add_rules))
        .route("/_emulator/clock", post(clock))
        .route(
            "/_emulator/{*rest}",
            axum::routing::any(|| async { admin_error(StatusCode::NOT_FOUND, "no such admin endpoint") }),
        )
}

pub(crate) fn stats_of(app: &App) -> crate::Stats {
    let instances = lock(&app.inner).world.len() as u64;
    let mut stats = lock(&app.stats).clone();
    stats.instances = instances;
    stats
}

async fn stats(State(app): State<Arc<App>>) -> Response {
    Json(stats_of(&app)).into_response()
}

fn faults_view(app: &App) -> Response {
    let faults = lock(&app.faults);
    Json(serde_json::json!({ "config": faults.config(), "rules": faults.rules() })).into_response()
}

async fn faults(State(app): State<Arc<App>>) -> Response {
    faults_view(&app)
}

async fn set_faults(State(app): State<Arc<App>>, body: Result<Json<FaultConfig>, JsonRejection>) -> Response {
    let config = match body {
        Ok(Json(c)) => c,
        Err(e) => return admin_error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    if let Err(e) = config.validate() {
        return admin_error(StatusCode::BAD_REQUEST, e);
    }
    lock(&app.faults).set_config(config);
    faults_view(&app)
}

async fn clear_faults(State(app): State<Arc<App>>) -> Response {
    lock(&app.faults).clear();
    faults_view(&app)
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(FaultRule),
    Many(Vec<FaultRule>),
}

async fn add_rules(State(app): State<Arc<App>>, body: Result<Json<OneOrMany>, JsonRejection>) -> Response {
    let rules = match body {
        Ok(Json(OneOrMany::One(r))) => vec![r],
        Ok(Json(OneOrMany::Many(rs))) => rs,
        Err(e) => return admin_error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    if let Some(e) = rules.iter().find_map(|r| r.validate().err()) {
        return admin_error(StatusCode::BAD_REQUEST, e);
    }
    {
        let mut faults = lock(&app.faults);
        for rule in rules {
            faults.push(rule);
        }
    }
    faults_view(&app)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Advance {
    advance_ms: u64,
}

async fn clock(State(app): State<Arc<App>>, body: Result<Json<Advance>, JsonRejection>) -> Response {
    let advance = match body {
        Ok(Json(a)) => a,
        Err(e) => return admin_error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let by = i64::try_from(advance.advance_ms).unwrap_or(i64::MAX);
    let offset = app.advance_clock_ms(by);
    Json(serde_json::json!({ "offset_ms": offset })).into_response()
}
