//! The activation record: immutable once acknowledged, the unit that is stored, signed and synced.
use serde::{Deserialize, Serialize};

/// An activation, or a void that cancels an earlier record (never an update of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Activation,
    Void,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Activation => "activation",
            Kind::Void => "void",
        }
    }
    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "activation" => Some(Kind::Activation),
            "void" => Some(Kind::Void),
            _ => None,
        }
    }
}

/// One record as stored on the laptop and sent to the district (the wire form is this, as JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Globally unique id (UUIDv7, time-ordered).
    pub id: String,
    /// Per-device sequence number, 1, 2, 3…
    pub seq: i64,
    pub device_id: String,
    pub officer: String,
    pub team: String,
    /// RFC 3339 UTC, milliseconds: `2026-11-23T05:12:09.123Z`.
    pub recorded_at: String,
    pub kind: Kind,
    /// 10-digit desa/kelurahan code.
    pub village: String,
    /// 16-digit NIK.
    pub nik: String,
    pub name: String,
    /// E.164 mobile number.
    pub phone: String,
    #[serde(default)]
    pub email: Option<String>,
    /// For a void: the id of the record it cancels.
    #[serde(default)]
    pub voids: Option<String>,
    /// For a void: why.
    #[serde(default)]
    pub reason: Option<String>,
    /// Codes of the warnings shown when it was recorded.
    #[serde(default)]
    pub warnings: Vec<String>,
}

impl Record {
    /// A new activation of a validated citizen, number `seq` on this device, recorded now.
    pub fn activation(
        v: &crate::domain::validate::Valid,
        seq: i64,
        device_id: &str,
        officer: &str,
        team: &str,
    ) -> Record {
        Record {
            id: uuid::Uuid::now_v7().to_string(),
            seq,
            device_id: device_id.to_string(),
            officer: officer.to_string(),
            team: team.to_string(),
            recorded_at: crate::timefmt::now_utc(),
            kind: Kind::Activation,
            village: v.village.clone(),
            nik: v.nik.nik.clone(),
            name: v.name.clone(),
            phone: v.phone.clone(),
            email: v.email.clone(),
            voids: None,
            reason: None,
            warnings: v.warnings.iter().map(|w| w.code.to_string()).collect(),
        }
    }
}

/// Where a record stands with the district server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncStatus {
    Pending,
    Synced,
    Conflict,
    Rejected,
}

impl SyncStatus {
    pub const ALL: [SyncStatus; 4] = [
        SyncStatus::Pending,
        SyncStatus::Synced,
        SyncStatus::Conflict,
        SyncStatus::Rejected,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            SyncStatus::Pending => "pending",
            SyncStatus::Synced => "synced",
            SyncStatus::Conflict => "conflict",
            SyncStatus::Rejected => "rejected",
        }
    }
    pub fn parse(s: &str) -> Option<SyncStatus> {
        SyncStatus::ALL.into_iter().find(|x| x.as_str() == s)
    }
    /// Indonesian label for tables.
    pub fn label(self) -> String {
        use crate::tr;
        match self {
            SyncStatus::Pending => tr!("menunggu", "pending"),
            SyncStatus::Synced => tr!("terkirim", "synced"),
            SyncStatus::Conflict => tr!("konflik", "conflict"),
            SyncStatus::Rejected => tr!("ditolak", "rejected"),
        }
    }
}

/// A status reason stored from the server's answer (`nik_already_activated (conflict_with …)`,
/// `damaged`, …) in the officer's words, with what to do; never the code or a record id.
/// `seq` is the officer's own record (for the void hint), `offset` the local time zone.
pub fn plain_reason(reason: &str, seq: i64, offset: time::UtcOffset) -> String {
    use crate::tr;
    // A conflict the server described: who activated the NIK first, when and where.
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(reason)
        && v["code"] == "nik_already_activated"
    {
        let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
        let desa = super::region::village(&s("village"))
            .map(|r| r.name.clone())
            .unwrap_or_else(|| s("village"));
        let when = crate::timefmt::parse(&s("recorded_at"))
            .map(|t| {
                let l = t.to_offset(offset);
                format!(
                    "{:02}-{:02} {:02}:{:02}",
                    l.day(),
                    u8::from(l.month()),
                    l.hour(),
                    l.minute()
                )
            })
            .unwrap_or_default();
        return tr!(
            "sudah diaktivasi oleh {} ({}) {} di {} — bila benar, batalkan catatan Anda: ikd-field void {seq}",
            "already activated by {} ({}) {} in {} — if so, void your record: ikd-field void {seq}",
            s("team"),
            s("officer"),
            when,
            desa
        );
    }
    let code = reason.split_whitespace().next().unwrap_or("");
    match code {
        "nik_already_activated" => tr!(
            "NIK ini sudah diaktivasi tim lain. Hubungi admin Dinas; bila benar, batalkan catatan ini dan ambil kembali slipnya",
            "this NIK was activated by another team. Call the district admin; if so, void this record and take its slip back"
        ),
        "already_voided" => tr!("sudah dibatalkan sebelumnya", "already voided before"),
        "damaged" => tr!(
            "catatan ini rusak di laptop dan tidak dikirim; hubungi admin Dinas",
            "this record is damaged on the laptop and was not sent; call the district admin"
        ),
        "seal_unopened" => tr!(
            "server Dinas tidak bisa membuka data warga di catatan ini (kunci Dinas lain?); hubungi admin Dinas",
            "the district server cannot open this record's sealed data (another district key?); call the district admin"
        ),
        "void_target_unknown" | "void_target_missing" => tr!(
            "catatan yang dibatalkan belum ada di server; kirim lagi nanti",
            "the record it voids is not on the server yet; send again later"
        ),
        _ => tr!(
            "ditolak server Dinas; hubungi admin Dinas",
            "refused by the district server; call the district admin"
        ),
    }
}

impl std::str::FromStr for SyncStatus {
    type Err = String;
    /// The stored word or the Indonesian one that tables print (`menunggu`, `terkirim`,
    /// `konflik`, `ditolak`), in any case.
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim().to_lowercase();
        let indonesian = match s.as_str() {
            "menunggu" => Some(SyncStatus::Pending),
            "terkirim" => Some(SyncStatus::Synced),
            "konflik" => Some(SyncStatus::Conflict),
            "ditolak" => Some(SyncStatus::Rejected),
            _ => None,
        };
        indonesian.or_else(|| SyncStatus::parse(&s)).ok_or_else(|| {
            crate::tr!(
                "'{s}' bukan status; pakai menunggu, terkirim, konflik atau ditolak",
                "'{s}' is not a status; use pending, synced, conflict or rejected"
            )
        })
    }
}
