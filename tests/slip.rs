//! End-to-end: the real binary records with `--print`, renders every slip format, and verifies
//! slips from text and from a PNG, refusing tampered slips, wrong keys and unreadable images.
mod util;
use util::outside_tool;
use util::{Kit, read, record_args};

fn people() -> Vec<ikd_field::domain::validate::Input> {
    ikd_field::synth::citizens(31, "1702", 3)
}

fn audit_actions(k: &Kit, record_id: &str) -> Vec<String> {
    let db = rusqlite::Connection::open(k.dir.join("field.db")).unwrap();
    let mut st = db
        .prepare("SELECT action FROM audit WHERE record_id = ?1 ORDER BY id")
        .unwrap();
    st.query_map([record_id], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Changes one Base45 character of the payload (keeping it valid Base45).
fn tamper(payload: &str, at: usize) -> String {
    let mut b = payload.as_bytes().to_vec();
    b[at] = if b[at] == b'A' { b'B' } else { b'A' };
    String::from_utf8(b).unwrap()
}

#[test]
fn record_print_then_verify_the_png() {
    let k = Kit::new();
    let p = &people()[0];
    let mut args = record_args(p);
    args.push("--print");
    let out = k.json(&args);
    let id = out["record"]["id"].as_str().unwrap().to_string();
    let file = out["slip"][0]["to"]
        .as_str()
        .expect("slip file")
        .to_string();
    assert!(file.ends_with("slip-000001.png"), "{file}");
    assert!(read(std::path::Path::new(&file)).starts_with(b"\x89PNG"));

    // The photo of the slip verifies with this device's own key.
    let v = k.json(&["verify", &file]);
    assert_eq!(v["valid"], true);
    let s = &v["slips"][0];
    assert_eq!(s["record_id"], id.as_str());
    assert_eq!(s["name"], p.name.to_uppercase().as_str());
    assert_eq!(s["village"], p.village.as_str());
    let masked = format!("{}******{}", &p.nik[..6], &p.nik[12..]);
    assert_eq!(s["nik_masked"], masked.as_str());

    // A reprint is audited as such.
    k.ok(&["slip", "1", "--format", "svg", "--out", "-"]);
    assert_eq!(audit_actions(&k, &id), vec!["record", "print", "reprint"]);
}

#[test]
fn every_format_renders() {
    let k = Kit::new();
    let ps = people();
    for i in 0..3 {
        k.record_synthetic(&ps, i);
    }
    let out = |name: &str| k.path(name);
    let o = |name: &str| out(name).to_str().unwrap().to_string();
    k.ok(&[
        "slip",
        "1",
        "--format",
        "png",
        "--paper",
        "80",
        "--out",
        &o("a.png"),
    ]);
    k.ok(&["slip", "#2", "--format", "svg", "--out", &o("a.svg")]);
    k.ok(&["slip", "1", "--format", "pdf", "--out", &o("a6.pdf")]);
    k.ok(&["slip", "1-3", "1", "--sheet", "--out", &o("sheet.pdf")]);
    k.ok(&["slip", "3", "--format", "escpos", "--out", &o("a.bin")]);
    let text = k.ok(&["slip", "2", "--format", "text"]);

    let png = image::load_from_memory(&read(&out("a.png"))).unwrap();
    assert_eq!(png.width(), 576);
    assert!(
        String::from_utf8(read(&out("a.svg")))
            .unwrap()
            .contains("BUKTI AKTIVASI IKD")
    );
    let a6 = lopdf::Document::load_mem(&read(&out("a6.pdf"))).unwrap();
    assert_eq!(a6.get_pages().len(), 1);
    let sheet = lopdf::Document::load_mem(&read(&out("sheet.pdf"))).unwrap();
    assert_eq!(sheet.get_pages().len(), 1, "four slips on one A4 sheet");
    let bin = read(&out("a.bin"));
    assert!(bin.starts_with(&[0x1C, 0x2E, 0x1B, 0x40]) && bin.ends_with(&[0x1D, 0x56, 0x42, 3]));
    assert!(text.contains("BUKTI AKTIVASI IKD") && text.contains("IKD1:"));

    // ESC/POS straight to a printer device (here a plain file standing in for /dev/usb/lp0).
    let lp = out("lp0");
    std::fs::write(&lp, b"").unwrap();
    k.ok(&[
        "slip",
        "1",
        "--format",
        "escpos",
        "--raster",
        "--printer",
        &o("lp0"),
    ]);
    let sent = read(&lp);
    assert!(sent.starts_with(&[0x1C, 0x2E, 0x1B, 0x40]));
    assert!(sent.windows(4).any(|w| w == [0x1D, 0x76, 0x30, 0x00]));
    // A printer that is not there: a clear error, not a new file.
    let (_, err) = k.fails(
        &[
            "slip",
            "1",
            "--format",
            "escpos",
            "--printer",
            &o("nope/lp9"),
        ],
        1,
    );
    assert!(err.contains("Printer"), "{err}");
}

#[test]
fn verify_refuses_tampering_wrong_keys_and_junk() {
    let k = Kit::new();
    k.record_synthetic(&people(), 0);
    let s = k.json(&["slip", "1", "--format", "text"]);
    let payload = s["slips"][0]["payload"].as_str().unwrap().to_string();
    let dev = k.json(&["device"]);
    let device_id = dev["device"]["device_id"].as_str().unwrap().to_string();
    let public = dev["device"]["public_key"].as_str().unwrap().to_string();

    // Good: own key, --key, --keys.
    k.ok(&["verify", &payload]);
    k.ok(&["verify", &payload, "--key", &public]);
    let keys = k.path("keys.txt");
    std::fs::write(&keys, format!("# district\n{device_id} {public}\n")).unwrap();
    let keys = keys.to_str().unwrap();
    let other = Kit::new();
    other.ok(&["verify", &payload, "--keys", keys]);

    // Tampered: a changed character in the name or in the signature → exit 3.
    let (_, err) = k.fails(&["verify", &tamper(&payload, payload.len() - 100)], 3);
    assert!(err.contains("TIDAK SAH"), "{err}");
    k.fails(&["verify", &tamper(&payload, payload.len() - 2)], 3);
    k.fails(&["verify", "IKD1:not*base45"], 3);

    // Another device's key → exit 1, naming both devices.
    let (_, err) = other.fails(&["verify", &payload], 1);
    assert!(err.contains(&device_id), "{err}");
    let other_keys = other.path("k.txt");
    let od = other.json(&["device"]);
    std::fs::write(
        &other_keys,
        format!("{}\n", od["device"]["public_key"].as_str().unwrap()),
    )
    .unwrap();
    let (_, err) = k.fails(
        &["verify", &payload, "--keys", other_keys.to_str().unwrap()],
        1,
    );
    assert!(err.contains(&device_id), "{err}");

    // Images: unreadable, and with no QR.
    let junk = k.path("junk.png");
    std::fs::write(&junk, b"\x89PNG not really").unwrap();
    let (_, err) = k.fails(&["verify", junk.to_str().unwrap()], 1);
    assert!(err.contains("Gambar"), "{err}");
    let blank = k.path("blank.png");
    image::GrayImage::from_pixel(300, 300, image::Luma([255]))
        .save(&blank)
        .unwrap();
    let (_, err) = k.fails(&["verify", blank.to_str().unwrap()], 1);
    assert!(err.contains("QR"), "{err}");
    k.fails(&["verify", "no-such-file.png"], 2);

    // No data directory and no key given: says how to give one.
    let (_, err) = Kit::empty().fails(&["verify", &payload], 2);
    assert!(err.contains("--key"), "{err}");
}

#[test]
fn voided_records_get_no_slip() {
    let k = Kit::new();
    k.record_synthetic(&people(), 0);
    k.ok(&["void", "1", "--reason", "salah orang"]);
    k.fails(&["slip", "1"], 3);
    k.fails(&["slip", "2"], 3);
}

#[test]
fn record_print_uses_the_configured_printer() {
    let k = Kit::new();
    let lp = k.path("lp0");
    std::fs::write(&lp, b"").unwrap();
    std::fs::write(
        k.dir.join("config.toml"),
        format!(
            "[slip]\nformat = \"escpos\"\npaper = 80\nprinter = \"{}\"\noffice = \"DINAS UJI\"\n",
            lp.display()
        ),
    )
    .unwrap();
    let p = &people()[1];
    let mut args = record_args(p);
    args.push("--print");
    let out = k.ok(&args);
    assert!(out.contains("#1"), "{out}");
    let sent = read(&lp);
    assert!(
        sent.starts_with(&[0x1C, 0x2E, 0x1B, 0x40]),
        "FS . then ESC @ first"
    );
    assert!(sent.windows(9).any(|w| w == b"DINAS UJI"));
    // 80 mm: 8-dot QR modules.
    assert!(
        sent.windows(8)
            .any(|w| w == [0x1D, 0x28, 0x6B, 3, 0, 0x31, 0x43, 8])
    );
    assert!(sent.ends_with(&[0x1D, 0x56, 0x42, 3]));

    // A printer that went away: the record is still saved, the slip error says how to reprint.
    std::fs::remove_file(&lp).unwrap();
    let p = &people()[2];
    let mut args = record_args(p);
    args.push("--print");
    let out = k.run(&args);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ikd-field slip 2"), "{err}");
    assert_eq!(k.json(&["list"])["count"], 2);
}

#[test]
fn pdftotext_reads_the_slip_back() {
    if !outside_tool("pdftotext", "poppler-utils") {
        return;
    }
    let k = Kit::new();
    let mut p = people()[0].clone();
    p.name = "Nur\u{2019}aini Jose\u{301}".into();
    let out = k.json(&record_args(&p));
    assert_eq!(out["record"]["name"], "NUR'AINI JOSÉ");
    let masked = format!("{}******{}", &p.nik[..6], &p.nik[12..]);
    for (args, file) in [
        (vec!["slip", "1", "--format", "pdf"], "a6.pdf"),
        (vec!["slip", "1", "1", "--sheet"], "sheet.pdf"),
    ] {
        let path = k.path(file);
        let mut args = args.clone();
        args.extend(["--out", path.to_str().unwrap()]);
        k.ok(&args);
        let text = std::process::Command::new("pdftotext")
            .args([path.to_str().unwrap(), "-"])
            .output()
            .unwrap();
        assert!(text.status.success());
        let text = String::from_utf8(text.stdout).unwrap();
        assert!(text.contains("NUR'AINI JOSÉ"), "{file}: {text}");
        assert!(text.contains(&masked), "{file}: {text}");
        assert!(text.contains("BUKTI AKTIVASI IKD"), "{file}: {text}");
    }
}

#[test]
fn names_a_ktp_cannot_hold_and_impossible_region_codes_are_refused() {
    let k = Kit::new();
    let mut p = people()[1].clone();
    for (name, why) in [
        ("\u{15E}\u{DC}KR\u{DC}", "KTP"),
        ("\u{738B}\u{5C0F}\u{660E}", "Latin"),
    ] {
        p.name = name.into();
        let (_, err) = k.fails(&record_args(&p), 3);
        assert!(err.contains(why) && err.contains("Nama"), "{err}");
    }
    p.name = "SITI AMINAH".into();
    p.nik = format!("{}00{}", &p.nik[..2], &p.nik[4..]);
    let (_, err) = k.fails(&record_args(&p), 3);
    assert!(err.contains("00"), "{err}");
    assert_eq!(k.json(&["list"])["count"], 0);
}

/// A sheet of four slips where one QR is damaged (its finder patterns intact, its data not):
/// verify says how many it read and that one QR could not be read, and fails.
#[test]
fn a_sheet_with_an_unreadable_qr_fails_loudly() {
    let k = Kit::new();
    let ps = people();
    for i in 0..3 {
        k.record_synthetic(&ps, i);
    }
    let mut sheet = image::GrayImage::from_pixel(900, 1400, image::Luma([255]));
    for (n, (x, y)) in [(20, 20), (470, 20), (20, 720), (470, 720)]
        .into_iter()
        .enumerate()
    {
        let f = k.path(&format!("s{n}.png"));
        k.ok(&[
            "slip",
            &(n % 3 + 1).to_string(),
            "--format",
            "png",
            "--out",
            f.to_str().unwrap(),
        ]);
        let mut slip = image::open(&f).unwrap().to_luma8();
        if n == 3 {
            // Find the QR with a real decoder, then scribble over its middle.
            let mut prepared = rqrr::PreparedImage::prepare(slip.clone());
            let grid = &prepared.detect_grids()[0];
            let xs = grid.bounds.map(|p| p.x as u32);
            let ys = grid.bounds.map(|p| p.y as u32);
            let (x0, x1) = (*xs.iter().min().unwrap(), *xs.iter().max().unwrap());
            let (y0, y1) = (*ys.iter().min().unwrap(), *ys.iter().max().unwrap());
            let (w, h) = (x1 - x0, y1 - y0);
            for py in y0 + h * 3 / 10..y0 + h * 7 / 10 {
                for px in x0 + w * 3 / 10..x1 - w / 20 {
                    let v = if (px / 3 + py / 5) % 2 == 0 { 0 } else { 255 };
                    slip.put_pixel(px, py, image::Luma([v]));
                }
            }
        }
        image::imageops::overlay(&mut sheet, &slip, x, y);
    }
    let file = k.path("sheet.png");
    sheet.save(&file).unwrap();
    let out = k.run(&["--json", "verify", file.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let d = &v["error"]["details"];
    assert_eq!(
        (d["found"].as_u64(), d["unread"].as_u64()),
        (Some(3), Some(1)),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("TIDAK terbaca"),
        "{v}"
    );
    // The same sheet without the damaged slip: all three found and checked.
    let mut whole = sheet.clone();
    image::imageops::overlay(
        &mut whole,
        &image::GrayImage::from_pixel(430, 680, image::Luma([255])),
        470,
        720,
    );
    whole.save(&file).unwrap();
    let v = k.json(&["verify", file.to_str().unwrap()]);
    assert_eq!(
        (v["found"].as_u64(), v["checked"].as_u64()),
        (Some(3), Some(3)),
        "{v}"
    );
    let text = k.ok(&["verify", file.to_str().unwrap()]);
    assert!(text.contains("3 slip ditemukan"), "{text}");
}

/// A name typed with a decomposed accent and a typographic apostrophe is stored as the KTP
/// writes it and printed as itself in every format: no '?' anywhere.
#[test]
fn accented_names_print_as_themselves_in_every_format() {
    let k = Kit::new();
    let mut p = people()[2].clone();
    p.name = "Nur\u{2019}aini Jose\u{301}".into();
    let out = k.json(&record_args(&p));
    assert_eq!(out["record"]["name"], "NUR'AINI JOSÉ");
    let o = |n: &str| k.path(n).to_str().unwrap().to_string();
    k.ok(&["slip", "1", "--format", "escpos", "--out", &o("s.bin")]);
    k.ok(&["slip", "1", "--format", "svg", "--out", &o("s.svg")]);
    let text = k.ok(&["slip", "1", "--format", "text"]);
    // ESC/POS: Windows-1252, so É is one byte 0xC9.
    let bin = read(&k.path("s.bin"));
    let line = bin
        .split(|b| *b == b'\n')
        .find(|l| l.windows(8).any(|w| w == b"NUR'AINI"))
        .expect("name line");
    assert!(line.ends_with(b"NUR'AINI JOS\xC9"), "{line:?}");
    let svg = String::from_utf8(read(&k.path("s.svg"))).unwrap();
    assert!(svg.contains("NUR&apos;AINI JOSÉ"), "{svg}");
    assert!(
        text.contains("NUR'AINI JOSÉ") && !text.contains('?'),
        "{text}"
    );
    // The PNG's QR carries the same name back.
    k.ok(&["slip", "1", "--format", "png", "--out", &o("s.png")]);
    let v = k.json(&["verify", &o("s.png")]);
    assert_eq!(v["slips"][0]["name"], "NUR'AINI JOSÉ");
}
