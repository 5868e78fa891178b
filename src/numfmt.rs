//! Numbers as people in Indonesia write them: `60.846`, `17,13`.

/// Indonesian number: 60846 → "60.846".
pub fn fmt_int(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push('.');
        }
        out.push(c);
    }
    out
}

/// Indonesian percentage from hundredths: 1713 → "17,13".
pub fn fmt_pct(hundredths: u64) -> String {
    format!("{},{:02}", fmt_int(hundredths / 100), hundredths % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_with_dots_and_decimal_comma() {
        assert_eq!(fmt_int(0), "0");
        assert_eq!(fmt_int(999), "999");
        assert_eq!(fmt_int(60_846), "60.846");
        assert_eq!(fmt_int(1_470_195), "1.470.195");
        assert_eq!(fmt_pct(1713), "17,13");
        assert_eq!(fmt_pct(5), "0,05");
    }
}
