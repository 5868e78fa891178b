//! Stopping cleanly: Ctrl+C, SIGTERM or SIGHUP on unix, and Ctrl+C, Ctrl+Break or closing the
//! console window on Windows, ask the running command to stop at its next safe point (after
//! the batch in flight, after the requests being answered). A second one exits at once, which is
//! safe too: the journals make the next run resend the same bytes. One handler per process
//! (the `ctrlc` crate: a self-pipe on unix, `SetConsoleCtrlHandler` on Windows).
use crate::error::AppError;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, OnceLock};

static FLAG: OnceLock<Result<Arc<AtomicBool>, String>> = OnceLock::new();
static SECOND_EXIT: AtomicI32 = AtomicI32::new(130);

/// The process's stop flag, set by the first stop request; a second request exits the process
/// with `second_exit` (the code of the first caller's choosing).
pub fn flag(second_exit: i32) -> Result<Arc<AtomicBool>, AppError> {
    let installed = FLAG.get_or_init(|| {
        SECOND_EXIT.store(second_exit, Ordering::Relaxed);
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::clone(&stop);
        ctrlc::set_handler(move || {
            if seen.swap(true, Ordering::SeqCst) {
                std::process::exit(SECOND_EXIT.load(Ordering::Relaxed));
            }
        })
        .map(|()| stop)
        .map_err(|e| e.to_string())
    });
    installed
        .clone()
        .map_err(|e| AppError::other(format!("Ctrl+C handler: {e}")))
}

/// The exit code when the reader of our output went away (what a shell reports for SIGPIPE).
pub const CLOSED_PIPE_EXIT: i32 = 141;

/// Makes a closed output pipe (`ikd-field status | head -1`) end the command quietly, as it ends
/// any Unix tool, instead of a panic: Rust ignores SIGPIPE, so `println!` to a closed pipe
/// panics with "Broken pipe". Other panics keep the default report.
pub fn quiet_on_closed_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to std") && message.contains("Broken pipe") {
            std::process::exit(CLOSED_PIPE_EXIT);
        }
        default(info);
    }));
}
