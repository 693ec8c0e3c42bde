//! Cheap output guards: canary leaks (also in streams), deny-lists, system-prompt leaks, JSON
//! format validation.

mod canary;
mod denylist;
mod json;
mod leak;

pub use canary::{canary_in, new_canary, CanaryStream};
pub use denylist::{DenyList, DenyMatch};
pub use json::{validate_json, JsonViolation};
pub use leak::{prompt_leak, LeakReport};
