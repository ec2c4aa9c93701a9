//! Planner tests: hand-made observed states in, plans out, checked by assertion and by
//! snapshots of the rendered plan.

mod cost;
mod drift;
mod offerings;
mod pools;
mod rollout;
mod saved;
mod scaling;
mod scenarios;
mod seed_golden;
mod world;
