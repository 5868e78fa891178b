//! Synthetic citizens for the demo, tests and benchmarks: valid-looking NIKs built from real
//! region codes and made-up dates and serials, names combined from common name parts, and phone
//! numbers from real operator prefixes. Deterministic for a seed; no real person's data.
use crate::domain::region;
use crate::domain::validate::Input;

/// A small deterministic generator (xorshift64*); not for anything secret.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

const GIVEN: &[&str] = &[
    "AGUS", "BUDI", "SITI", "DEWI", "RINA", "ANDI", "PUTRI", "WAYAN", "MADE", "NURUL", "FITRI",
    "JOKO", "SRI", "TEGUH", "YUSUF", "AYU", "RAHMAT", "INDAH", "HENDRA", "LESTARI", "EKO",
    "NINGSIH",
];
const FAMILY: &[&str] = &[
    "SANTOSO",
    "WIJAYA",
    "SARI",
    "HIDAYAT",
    "PRATAMA",
    "KUSUMA",
    "SAPUTRA",
    "RAHAYU",
    "NASUTION",
    "SIREGAR",
    "HARAHAP",
    "LUBIS",
    "PURNAMA",
    "SETIAWAN",
    "WULANDARI",
    "HASIBUAN",
    "MAULANA",
];
const OPERATORS: &[&str] = &[
    "0811", "0812", "0813", "0821", "0822", "0852", "0853", "0857", "0878", "0896",
];

/// One synthetic citizen living in `village` (a 10-digit code that exists); most NIKs carry the
/// village's own kecamatan, some another kecamatan of the same regency (people move).
pub fn citizen(rng: &mut Rng, village: &str, serial_base: u32) -> Input {
    let regency = &village[..4];
    let district = if rng.below(10) < 8 {
        village[..6].to_string()
    } else {
        rng.pick(region::children(regency)).code.clone()
    };
    let female = rng.below(2) == 0;
    let year = 1950 + rng.below(57) as i32; // 1950–2006: all 17+ in 2024 and later
    let month = 1 + rng.below(12) as u8;
    let day = 1 + rng.below(28) as u8;
    let serial = 1 + (serial_base + rng.below(97) as u32) % 9999;
    let nik = format!(
        "{district}{:02}{month:02}{:02}{serial:04}",
        day + if female { 40 } else { 0 },
        year % 100
    );
    let name = format!("{} {}", rng.pick(GIVEN), rng.pick(FAMILY));
    let phone = format!("{}{:08}", rng.pick(OPERATORS), rng.below(100_000_000));
    let email = if rng.below(4) == 0 {
        format!(
            "{}{}@contoh.id",
            name.split(' ').next().unwrap().to_lowercase(),
            rng.below(1000)
        )
    } else {
        String::new()
    };
    Input {
        nik,
        name,
        phone,
        email,
        village: village.to_string(),
    }
}

/// `n` citizens spread over the villages of `regency`, with distinct NIKs.
pub fn citizens(seed: u64, regency: &str, n: usize) -> Vec<Input> {
    let mut rng = Rng::new(seed);
    let villages: Vec<&str> = region::children(regency)
        .iter()
        .flat_map(|d| region::children(&d.code))
        .map(|v| v.code.as_str())
        .collect();
    assert!(!villages.is_empty(), "regency {regency} has no villages");
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(n);
    let mut i = 0u32;
    while out.len() < n {
        let village = *rng.pick(&villages);
        let c = citizen(&mut rng, village, i);
        i += 1;
        if seen.insert(c.nik.clone()) {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::validate::activation;

    #[test]
    fn synthetic_citizens_are_valid_and_distinct() {
        let today = time::macros::date!(2026 - 11 - 23);
        let people = citizens(7, "1702", 300);
        let mut niks = std::collections::HashSet::new();
        for p in &people {
            let v = activation(p, today).unwrap_or_else(|e| panic!("{p:?}: {e:?}"));
            assert!(niks.insert(v.nik.nik.clone()));
        }
        // Deterministic for a seed.
        assert_eq!(citizens(7, "1702", 3)[2].nik, people[2].nik);
    }
}
