//! Detection and redaction of personal data (e-mail, phone, card, IBAN, SSN, IP addresses).

mod detector;
mod policy;
mod validate;

pub use detector::{detect_pii, PiiFinding, PiiKind};
pub use policy::{apply_pii_policy, PiiAction, PiiOutcome, PiiPolicy};
pub use validate::{iban_valid, luhn_valid};
