//! Prints the full input report and document verdict for each argument, for hand checks:
//! `cargo run -p keel-guard --example probe -- "text" ...`.

use keel_guard::InputGuard;

fn main() {
    let guard = match InputGuard::with_defaults() {
        Ok(g) => g,
        Err(e) => {
            eprintln!("probe: {e}");
            return;
        }
    };
    for text in std::env::args().skip(1) {
        let report = guard.check(&text);
        let doc = guard.scan_document(&text);
        println!("{}", serde_json::json!({ "input": report, "document": doc }));
    }
}
