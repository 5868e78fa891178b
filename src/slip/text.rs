//! The slip in a terminal: its lines, then the QR drawn with half blocks, two module rows per
//! text row. Light modules are drawn as blocks (as `qrencode -t UTF8` does), which scans on the
//! usual light-on-dark terminal.
use super::qr::{QUIET_ZONE, Qr};
use super::{INSTRUCTION, Slip, TITLE};

pub fn qr_blocks(qr: &Qr) -> String {
    let q = QUIET_ZONE as isize;
    let n = qr.width as isize;
    let light =
        |x: isize, y: isize| x < 0 || y < 0 || x >= n || y >= n || !qr.dark(x as usize, y as usize);
    let mut out = String::new();
    let mut y = -q;
    while y < n + q {
        for x in -q..n + q {
            out.push(match (light(x, y), light(x, y + 1)) {
                (true, true) => '█',
                (true, false) => '▀',
                (false, true) => '▄',
                (false, false) => ' ',
            });
        }
        out.push('\n');
        y += 2;
    }
    out
}

pub fn render(slip: &Slip) -> String {
    let mut out = format!("{TITLE}\n{}\n\nNama       {}\n", slip.office, slip.name);
    for (label, value) in slip.rows() {
        out.push_str(&format!("{label:<10} {value}\n"));
    }
    out.push_str(&format!("ID         {}\n\n", slip.record_id));
    out.push_str(&qr_blocks(&slip.qr));
    out.push_str(&format!("{INSTRUCTION}\n{}\n", slip.payload));
    out
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn terminal_qr_matches_the_symbol() {
        let s = slip("BUDI SANTOSO");
        let t = render(&s);
        assert!(t.starts_with(TITLE));
        assert!(t.contains("BUDI SANTOSO") && t.contains(&s.payload));
        let blocks = qr_blocks(&s.qr);
        let rows: Vec<&str> = blocks.lines().collect();
        let side = s.qr.width + 2 * QUIET_ZONE;
        assert_eq!(rows.len(), side.div_ceil(2));
        assert!(rows.iter().all(|r| r.chars().count() == side));
        // Quiet zone (light, so a block), then the finder pattern's dark column (a blank).
        assert_eq!(rows[1].chars().nth(QUIET_ZONE), Some('█'));
        assert_eq!(rows[2].chars().nth(QUIET_ZONE), Some(' '));
    }
}
