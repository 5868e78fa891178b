//! Drives headless Chromium through Debian's `chromedriver` (the W3C WebDriver protocol over
//! HTTP, spoken with ureq): open a page, find elements, type keys, click, read text, take
//! screenshots. Enough for the desk's end-to-end test, nothing more.
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ENTER: &str = "\u{E007}";
pub const TAB: &str = "\u{E004}";
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Paths of Chromium and chromedriver, when both are installed.
pub fn installed() -> Option<(PathBuf, PathBuf)> {
    let find = |names: &[&str]| names.iter().map(PathBuf::from).find(|p| p.exists());
    Some((
        find(&["/usr/bin/chromium", "/usr/bin/chromium-browser"])?,
        find(&["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"])?,
    ))
}

pub struct Driver {
    child: Child,
    base: String,
    session: String,
    agent: ureq::Agent,
    _profile: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Driver {
    /// Starts chromedriver and a headless Chromium session with a window of `w`×`h`.
    pub fn start(chromium: &Path, chromedriver: &Path, w: u32, h: u32) -> Driver {
        let port = free_port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let base = format!("http://127.0.0.1:{port}");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let t0 = Instant::now();
        while agent.get(&format!("{base}/status")).call().is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium.to_str().unwrap(),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--no-first-run", "--lang=id-ID", "--hide-scrollbars",
                         format!("--window-size={w},{h}"),
                         format!("--user-data-dir={}", profile.path().display())]
            }
        }}});
        let mut d = Driver {
            child,
            base,
            session: String::new(),
            agent,
            _profile: profile,
        };
        let v = d.call("POST", "/session", Some(caps));
        d.session = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}"))
            .to_string();
        d
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let res = match (method, body) {
            ("GET", _) => self.agent.get(&url).call(),
            ("DELETE", _) => self.agent.delete(&url).call(),
            (_, b) => self
                .agent
                .post(&url)
                .send_json(b.unwrap_or_else(|| json!({}))),
        };
        let mut res = res.unwrap_or_else(|e| panic!("webdriver {method} {path}: {e}"));
        let v: Value = res.body_mut().read_json().unwrap_or(Value::Null);
        let v = v.get("value").cloned().unwrap_or(v);
        if let Some(err) = v.get("error") {
            panic!("webdriver {method} {path}: {err} {}", v["message"]);
        }
        v
    }

    fn s(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    pub fn goto(&self, url: &str) {
        self.call("POST", &self.s("/url"), Some(json!({"url": url})));
    }

    pub fn resize(&self, w: u32, h: u32) {
        self.call(
            "POST",
            &self.s("/window/rect"),
            Some(json!({"width": w, "height": h})),
        );
    }

    pub fn find(&self, css: &str) -> String {
        let v = self.call(
            "POST",
            &self.s("/element"),
            Some(json!({"using": "css selector", "value": css})),
        );
        v[ELEMENT].as_str().unwrap().to_string()
    }

    /// Types into the element (focusing it).
    pub fn type_in(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.call(
            "POST",
            &self.s(&format!("/element/{e}/value")),
            Some(json!({"text": text})),
        );
    }

    /// Types keys into whatever has the focus now (as a person at the keyboard).
    pub fn keys(&self, text: &str) {
        let actions: Vec<Value> = text
            .chars()
            .flat_map(|c| {
                let k = c.to_string();
                [
                    json!({"type": "keyDown", "value": k}),
                    json!({"type": "keyUp", "value": k}),
                ]
            })
            .collect();
        self.call(
            "POST",
            &self.s("/actions"),
            Some(json!({"actions": [{"type": "key", "id": "kbd", "actions": actions}]})),
        );
    }

    pub fn click(&self, css: &str) {
        let e = self.find(css);
        self.call("POST", &self.s(&format!("/element/{e}/click")), None);
    }

    pub fn text(&self, css: &str) -> String {
        let e = self.find(css);
        self.call("GET", &self.s(&format!("/element/{e}/text")), None)
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// Runs `script` (a function body) in the page and returns its value.
    /// A phone's screen: the page laid out `w` px wide (a window cannot be made narrower than
    /// 500 px), through the DevTools protocol's device emulation.
    pub fn phone(&self, w: u32, h: u32) {
        self.call(
            "POST",
            &self.s("/goog/cdp/execute"),
            Some(
                json!({"cmd": "Emulation.setDeviceMetricsOverride", "params": {
                "width": w, "height": h, "deviceScaleFactor": 1, "mobile": true}}),
            ),
        );
    }

    pub fn js(&self, script: &str) -> Value {
        self.call(
            "POST",
            &self.s("/execute/sync"),
            Some(json!({"script": script, "args": []})),
        )
    }

    /// The id of the element that has the focus.
    pub fn focused_id(&self) -> String {
        self.js("return document.activeElement ? document.activeElement.id : ''")
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// Waits until `css`'s visible text contains `want` (the page answers asynchronously).
    pub fn wait_text(&self, css: &str, want: &str) -> String {
        let t0 = Instant::now();
        loop {
            let got = self
                .js(&format!(
                    "const e = document.querySelector({css:?}); return e ? e.innerText : ''"
                ))
                .as_str()
                .unwrap_or("")
                .to_string();
            if got.contains(want) {
                return got;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "{css} never showed {want:?}; it shows {got:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until `script` returns true.
    pub fn wait_js(&self, what: &str, script: &str) {
        let t0 = Instant::now();
        while self.js(script) != Value::Bool(true) {
            assert!(t0.elapsed() < Duration::from_secs(60), "never: {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn screenshot(&self, to: &Path) {
        use base64::Engine;
        let v = self.call("GET", &self.s("/screenshot"), None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap();
        std::fs::write(to, png).unwrap();
    }

    /// Asserts the page shown (`page`, for the message) fits a 390 px phone window: neither the
    /// document nor any table, section, form, article or header scrolls sideways.
    pub fn assert_fits_phone(&self, page: &str) {
        let v = self.js(
            "const d = document.documentElement;
             const wide = [...document.querySelectorAll('.scroll, table, section, form, article, header')]
               .filter(e => e.scrollWidth > e.clientWidth + 1)
               .map(e => e.tagName + '.' + e.className + ' ' + e.scrollWidth + '>' + e.clientWidth);
             return [d.scrollWidth, window.innerWidth, wide];",
        );
        assert_eq!(v[1], 390, "{page}: not a phone-sized window: {v}");
        assert!(
            v[0].as_u64().unwrap() <= 390 && v[2].as_array().unwrap().is_empty(),
            "{page} is wider than a 390 px phone: {v}"
        );
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self
                .agent
                .delete(&format!("{}/session/{}", self.base, self.session))
                .call();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
