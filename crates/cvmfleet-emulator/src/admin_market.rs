//! The admin endpoints of stock and spot instances, and their Rust counterparts on
//! [`RunningEmulator`]:
//!
//! | method and path | body | answer |
//! |---|---|---|
//! | `GET /_emulator/stock` | | every limited offering: `[StockView]` |
//! | `PUT /_emulator/stock` | a [`StockSpec`] or a list | as GET |
//! | `POST /_emulator/spot/reclaim` | [`SpotReclaim`]: `{"instance_ids": […]}` or `{"count": N}` | `{"reclaimed": [IDs]}` |
//! | `GET /_emulator/spot/reclaims` | | every reclamation since the start: `[Reclaim]` |
//!
//! Changes are journaled before they are answered, like API requests. A bad body answers 400
//! and changes nothing.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::app::{App, Inner, admin_error, lock};
use crate::{Error, RunningEmulator};
use cvmfleet_cloud::{Mutation, Reclaim, SpotReclaim, World};
use cvmfleet_cloud::{StockSpec, StockView};

/// The routes, merged into the admin router.
pub(crate) fn routes() -> axum::Router<Arc<App>> {
    axum::Router::new()
        .route("/_emulator/stock", get(stock).put(set_stock))
        .route("/_emulator/spot/reclaim", post(reclaim))
        .route("/_emulator/spot/reclaims", get(reclaims))
}

/// Why an admin change was not made.
enum Refusal {
    /// The request is wrong (400).
    Bad(String),
    /// The journal could not be written (500).
    Journal,
}

/// Runs a change on the world, advanced to now, and journals what it changed before returning.
fn commit<T>(
    app: &App,
    change: impl FnOnce(&mut World, i64) -> Result<(T, Mutation), String>,
) -> Result<T, Refusal> {
    let now = app.world_now_ms();
    let mut inner = lock(&app.inner);
    let Inner { world, store } = &mut *inner;
    world.advance(now);
    let (out, mutation) = change(world, now).map_err(Refusal::Bad)?;
    if let Some(store) = store
        && !mutation.is_empty()
        && let Err(e) = store.append(&mutation)
    {
        tracing::error!(error = %e, "cannot append to the state journal");
        return Err(Refusal::Journal);
    }
    Ok(out)
}

fn refused(refusal: Refusal) -> Response {
    match refusal {
        Refusal::Bad(message) => admin_error(StatusCode::BAD_REQUEST, message),
        Refusal::Journal => {
            admin_error(StatusCode::INTERNAL_SERVER_ERROR, "the emulator could not save its state")
        }
    }
}

fn stock_of(app: &App) -> Vec<StockView> {
    let now = app.world_now_ms();
    let mut inner = lock(&app.inner);
    inner.world.advance(now);
    inner.world.stock_view()
}

async fn stock(State(app): State<Arc<App>>) -> Response {
    Json(stock_of(&app)).into_response()
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(StockSpec),
    Many(Vec<StockSpec>),
}

async fn set_stock(State(app): State<Arc<App>>, body: Result<Json<OneOrMany>, JsonRejection>) -> Response {
    let entries = match body {
        Ok(Json(OneOrMany::One(e))) => vec![e],
        Ok(Json(OneOrMany::Many(es))) => es,
        Err(e) => return admin_error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    match commit(&app, |world, _| world.set_stock(&entries).map(|m| ((), m))) {
        Ok(()) => Json(stock_of(&app)).into_response(),
        Err(refusal) => refused(refusal),
    }
}

async fn reclaim(State(app): State<Arc<App>>, body: Result<Json<SpotReclaim>, JsonRejection>) -> Response {
    let which = match body {
        Ok(Json(w)) => w,
        Err(e) => return admin_error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    match commit(&app, |world, now| world.reclaim_spot(&which, now)) {
        Ok(ids) => Json(serde_json::json!({ "reclaimed": ids })).into_response(),
        Err(refusal) => refused(refusal),
    }
}

async fn reclaims(State(app): State<Arc<App>>) -> Response {
    let now = app.world_now_ms();
    let mut inner = lock(&app.inner);
    inner.world.advance(now);
    Json(inner.world.reclaims().to_vec()).into_response()
}

fn config_error(refusal: Refusal) -> Error {
    match refusal {
        Refusal::Bad(message) => Error::Config(message),
        Refusal::Journal => Error::Config("the emulator could not save its state".into()),
    }
}

impl RunningEmulator {
    /// Sets the stock of offerings (`PUT /_emulator/stock`), all or none.
    ///
    /// # Errors
    /// [`Error::Config`] naming a bad entry (unknown zone or type, a charge type without stock)
    /// or a journal that cannot be written.
    pub fn set_stock(&self, entries: &[StockSpec]) -> Result<(), Error> {
        commit(self.app(), |world, _| world.set_stock(entries).map(|m| ((), m))).map_err(config_error)
    }

    /// Every limited offering with what it has left (`GET /_emulator/stock`).
    #[must_use]
    pub fn stock(&self) -> Vec<StockView> {
        stock_of(self.app())
    }

    /// Reclaims SPOTPAID instances now (`POST /_emulator/spot/reclaim`) and returns their IDs.
    ///
    /// # Errors
    /// [`Error::Config`] when an ID is not a live SPOTPAID instance, neither or both of IDs and
    /// count are given, or the journal cannot be written.
    pub fn reclaim_spot(&self, which: &SpotReclaim) -> Result<Vec<String>, Error> {
        commit(self.app(), |world, now| world.reclaim_spot(which, now)).map_err(config_error)
    }

    /// Every spot reclamation since the emulator started (`GET /_emulator/spot/reclaims`).
    #[must_use]
    pub fn spot_reclaims(&self) -> Vec<Reclaim> {
        let app = self.app();
        let now = app.world_now_ms();
        let mut inner = lock(&app.inner);
        inner.world.advance(now);
        inner.world.reclaims().to_vec()
    }
}
