//! Counts the rows of its event: a Trace user function in Rust (an executable `bootstrap` speaking the
//! AWS Lambda Runtime API). Start your own with `trace-lite bundle init DIR --runtime rust`.

#[path = "../../../../runtimes/rust-bootstrap/src/runtime.rs"]
mod runtime;

use runtime::{json_string, Context, HandlerError};

/// Counts the objects of the event's "rows" array by their opening braces at depth 2: no JSON parser
/// without dependencies (see the template for serde_json from Debian's packages).
fn handler(event: &str, ctx: &Context) -> Result<String, HandlerError> {
    let start = event.find("\"rows\"").ok_or_else(|| HandlerError::new("BadEvent", "the event has no rows"))?;
    let (mut depth, mut rows, mut in_string, mut escaped) = (0i32, 0u64, false, false);
    for c in event[start..].chars() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '[' | '{' => {
                depth += 1;
                if c == '{' && depth == 2 {
                    rows += 1;
                }
            }
            ']' | '}' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            _ => {}
        }
    }
    Ok(format!("{{\"rows\":{},\"request_id\":{}}}", rows, json_string(&ctx.request_id)))
}

fn main() {
    runtime::run(handler)
}
