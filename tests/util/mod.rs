//! Shared by the end-to-end tests: run the real `ikd-field` binary in a temporary data directory.
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub mod server;
pub mod webdriver;
#[macro_use]
pub mod store;

pub const BIN: &str = env!("CARGO_BIN_EXE_ikd-field");

/// A temporary folder holding a field data directory (`field/`) and anything else a test needs.
pub struct Kit {
    pub tmp: tempfile::TempDir,
    pub dir: PathBuf,
}

impl Kit {
    /// An empty (not initialised) data directory.
    pub fn empty() -> Kit {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("field");
        Kit { tmp, dir }
    }

    /// An initialised data directory.
    pub fn new() -> Kit {
        let k = Kit::empty();
        k.ok(&["init", "--officer", "PETUGAS UJI", "--team", "TIM UJI"]);
        k
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// `ikd-field --data-dir DIR ARGS…`, no stdin, Indonesian unless the args say otherwise.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--data-dir").arg(&self.dir).args(args);
        c.env_remove("IKD_FIELD_HOME")
            .env_remove("IKD_FIELD_CONFIG")
            .env_remove("IKD_FIELD_LANG")
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run ikd-field")
    }

    /// Runs and asserts exit 0; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "ikd-field {args:?} failed ({:?}):\n{}\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs with `--json`, asserts exit 0, parses stdout.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.push("--json");
        serde_json::from_str(&self.ok(&a)).expect("valid JSON")
    }

    /// Runs, asserts the exit code; returns (stdout, stderr).
    pub fn fails(&self, args: &[&str], code: i32) -> (String, String) {
        let out = self.run(args);
        let (o, e) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        assert_eq!(
            out.status.code(),
            Some(code),
            "ikd-field {args:?}:\n{o}\n{e}"
        );
        (o, e)
    }

    /// `SELECT COUNT(*) …` (or any one-integer query) on this kit's field database.
    pub fn count(&self, sql: &str) -> i64 {
        rusqlite::Connection::open(self.dir.join("field.db"))
            .unwrap()
            .query_row(sql, [], |r| r.get(0))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Records synthetic citizen `i` of a fixed set; returns the JSON answer.
    pub fn record_synthetic(
        &self,
        people: &[ikd_field::domain::validate::Input],
        i: usize,
    ) -> serde_json::Value {
        let p = &people[i];
        let mut args = record_args(p);
        if !p.email.is_empty() {
            args.extend(["--email", &p.email]);
        }
        self.json(&args)
    }
}

/// `record --nik … --name … --phone … --village …` for this citizen (no email); push more flags
/// after it.
pub fn record_args(p: &ikd_field::domain::validate::Input) -> Vec<&str> {
    vec![
        "record",
        "--nik",
        &p.nik,
        "--name",
        &p.name,
        "--phone",
        &p.phone,
        "--village",
        &p.village,
    ]
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// An outside tool the test compares against; missing, the test is skipped, except on CI
/// (CI=true), where it fails: the tool must be installed there.
pub fn outside_tool(name: &str, package: &str) -> bool {
    let found = std::process::Command::new(name)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok();
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{name} is missing on CI: install {package}"
        );
        eprintln!("skipped: {name} is not installed (apt-get install {package})");
    }
    found
}
