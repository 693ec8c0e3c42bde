//! Cheap output guards: canary leaks (also in streams), deny-lists, system-prompt leaks.

mod canary;
mod denylist;
mod leak;

pub use canary::{canary_in, new_canary, CanaryStream};
pub use denylist::{DenyList, DenyMatch};
pub use leak::{prompt_leak, LeakReport};
