//! The log backend: one line per event on stderr, `<UTC time> <message>` for the server's own
//! request and progress lines, `<UTC time> <LEVEL> <target>: <message>` for everything else
//! (warnings, and the libraries' diagnostics: rustls, ureq, postgres and r2d2 log
//! through the `log` facade). `IKD_LOG` sets the filter in env_logger's syntax (`debug`,
//! `warn,ikd_field=debug`, `rustls=trace`); the default is `info` for ikd-field and `warn`
//! for the libraries (none from rustls-platform-verifier, whose refusals we word ourselves).
use std::io::Write;

/// The variable holding the log filter.
pub const ENV: &str = "IKD_LOG";
/// rustls-platform-verifier logs every refused certificate as an error line of its own; the
/// command already says what happened in plain words, so it is heard only through `IKD_LOG`.
const DEFAULT: &str = "warn,ikd_field=info,rustls_platform_verifier=off";

/// Installs the logger (once; later calls do nothing).
pub fn init() {
    let filter = std::env::var(ENV)
        .ok()
        .filter(|f| !f.trim().is_empty())
        .unwrap_or_else(|| DEFAULT.to_string());
    let _ = env_logger::Builder::new()
        .parse_filters(&filter)
        .format(|buf, record| {
            let now = crate::timefmt::now_utc();
            let ours = record.target().starts_with("ikd_field");
            if ours && record.level() == log::Level::Info {
                writeln!(buf, "{now} {}", record.args())
            } else {
                writeln!(
                    buf,
                    "{now} {} {}: {}",
                    record.level(),
                    record.target(),
                    record.args()
                )
            }
        })
        .target(env_logger::Target::Stderr)
        .try_init();
}
