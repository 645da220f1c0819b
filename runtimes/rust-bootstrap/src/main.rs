//! Your user function. Write `handler`; `runtime.rs` does the rest.
//!
//! The handler gets the event as JSON text (`{"rows": [...], "params": {...}, "context": {...}}`
//! when Trace invokes it) and returns its result as JSON text, or a `HandlerError`, which
//! fails the invocation with that `errorType` and `errorMessage`. A panic fails only the
//! invocation in flight; the instance keeps serving.
//!
//! Parsing JSON: this template has no dependencies so it builds anywhere offline. To use
//! serde_json, install Debian's packaged crates (`apt-get install librust-serde-json-dev`,
//! plus `librust-serde-derive-dev` for `#[derive(Deserialize)]`), uncomment the
//! `[source.*]` lines in `.cargo/config.toml`, add `serde_json = "1"` under
//! `[dependencies]` in `Cargo.toml`, then:
//!
//! ```ignore
//! let event: serde_json::Value = serde_json::from_str(event)?;   // `?` gives a HandlerError
//! let rows = event["rows"].as_array().map_or(0, Vec::len);
//! Ok(serde_json::json!({"rows": rows}).to_string())
//! ```
//!
//! Setup that can fail (reading a file of the bundle, say) goes in `main` before `run`,
//! reporting a failure with `runtime::init_error(&HandlerError::new("ConfigError", "..."))`.

mod runtime;

use runtime::{json_string, Context, HandlerError};

/// The template's handler: answers with the request id and the event's length in bytes,
/// and fails when the event says `"fail": true` (a crude check, for lack of a JSON parser).
fn handler(event: &str, ctx: &Context) -> Result<String, HandlerError> {
    let compact: String = event.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.contains("\"fail\":true") {
        return Err(HandlerError::new("TemplateError", "the event asked to fail"));
    }
    Ok(format!(
        "{{\"requestId\":{},\"eventLength\":{},\"functionName\":{},\"remainingMs\":{}}}",
        json_string(&ctx.request_id),
        event.len(),
        json_string(&ctx.function_name),
        ctx.remaining_time().as_millis()
    ))
}

fn main() {
    runtime::run(handler)
}
