//! Enrolment with a district server that serves the office certificate of `server tls init`
//! (a CA of its own, not trusted by the laptop's operating system). The laptop must know the
//! server id beforehand (`--expect-server-id`, handed over with the token). Then:
//!
//! 1. `/v1/health` is read without checking the certificate; it is public and nothing private
//!    is sent. It must name the expected server and be signed by that server's key; when it
//!    carries an office CA, that is the CA to trust (else the usual checks apply).
//! 2. From then on the connection is checked against exactly that CA (and `sync.ca_file`), for
//!    the URL's host name or address: the token is only ever sent over a connection whose
//!    certificate chain the expected server vouched for.
//! 3. The signed enrolment answer must carry the same CA; only then is it stored (with the
//!    enrolment, in the field database), and every later sync trusts exactly it for this server.
use crate::client::pin::ExpectedServer;
use crate::client::transport::{office_ca_certs, same_office_ca};
use crate::client::{Client, Failure};
use crate::error::{AppError, Kind};
use crate::protocol::EnrolResponse;
use crate::tr;

/// The connection to enrol over when the expected server hands out an office CA: a client
/// trusting exactly that CA, and the CA (PEM). `None` when the URL is not `https://`, or the
/// server has no office CA and its certificate is trusted already (or it cannot be reached: the
/// caller reports that). Without a server id, an untrusted certificate is refused here in
/// words that ask for the id. `unreached` words a failure to reach the server.
pub fn route(
    client: &Client,
    expect: Option<&ExpectedServer>,
    unreached: &dyn Fn(&Failure) -> AppError,
) -> Result<Option<(Client, String)>, AppError> {
    let base = client.base();
    if !base.starts_with("https://") {
        return Ok(None);
    }
    let Some(want) = expect else {
        // No server id: only a certificate the laptop already trusts will do. One it does not
        // trust from a server that hands out an office CA: say the id is what is missing.
        if let Err(Failure::Certificate(why)) = client.health()
            && let Ok((h, true)) = client.unverified()?.health_signed()
            && office_ca_certs(&h.tls_ca).is_some()
        {
            return Err(needs_server_id(base, &why));
        }
        return Ok(None);
    };
    // A fresh challenge the server signs into its answer: an old signed health (with a CA
    // whose key was stolen since, SECURITY.md) cannot answer it.
    let mut nonce = [0u8; 16];
    getrandom::fill(&mut nonce).map_err(|e| AppError::other(e.to_string()))?;
    let challenge = hex::encode(nonce);
    let (h, signed) = client
        .unverified()?
        .health_challenged(&challenge)
        .map_err(|f| unreached(&f))?;
    // Not the expected server: refused before the token is spent.
    want.check_health(base, &h)?;
    if signed && office_ca_certs(&h.tls_ca).is_some() {
        // Servers that hand out an office CA all echo the challenge.
        if h.challenge != challenge {
            return Err(replayed(base));
        }
        return Ok(Some((client.trusting(&h.tls_ca)?, h.tls_ca)));
    }
    // No office CA (a server with a public certificate, or one before this): the certificate
    // must be one the laptop trusts already.
    match client.health() {
        Err(Failure::Certificate(why)) => Err(no_office_ca(base, &why)),
        _ => Ok(None),
    }
}

/// The CA to store with the enrolment: the one enrolment trusted, which the signed answer must
/// carry too (checked before anything is stored). Empty when the enrolment went over a
/// certificate the laptop trusted already: it keeps trusting that.
pub fn from_answer(
    base: &str,
    ans: &EnrolResponse,
    pinned: Option<String>,
) -> Result<String, AppError> {
    match pinned {
        None => Ok(String::new()),
        Some(ca) if same_office_ca(&ca, &ans.tls_ca) => Ok(ca),
        Some(_) => Err(AppError::other(tr!(
            "Jawaban pendaftaran dari {base} membawa sertifikat kantor yang lain dari sebelumnya. Tidak ada yang disimpan; token mungkin sudah terpakai.",
            "The enrolment answer from {base} carries another office certificate than before. Nothing was stored; the token may be spent."
        ))
        .hint(tr!(
            "Jaringan ini mungkin disadap. Minta token baru ke admin Dinas dan daftar dari jaringan kantor.",
            "This network may be intercepted. Ask the district admin for a new token and enrol from the office network."
        ))
        .details(serde_json::json!({ "server": base, "token_spent": true }))),
    }
}

/// A certificate refused after the office CA was taken from the expected server's signed
/// health: the address is not one the office certificate is for, the network put another
/// certificate in between, or the certificate is past its end. Nothing was sent.
pub fn certificate_refused(base: &str, why: &str) -> AppError {
    AppError::new(
        Kind::Unreachable,
        tr!(
            "Pendaftaran ke {base} belum terjadi: {why}. Sertifikat yang diterima laptop tidak cocok dengan sertifikat kantor server itu. Token belum terpakai; perangkat belum terdaftar; tidak ada yang hilang.",
            "Enrolment with {base} did not happen: {why}. The certificate this laptop got does not match that server's office certificate. The token is not spent; the device is not enrolled; nothing is lost."
        ),
    )
    .hint(tr!(
        "Pakai persis alamat https:// yang diberikan admin Dinas, dan daftar dari jaringan kantor (jaringan lain mungkin menyadap). Bila alamat server berubah atau sertifikatnya habis masa berlaku, admin menjalankan lagi 'ikd-field server tls init' di server lalu menyalakan ulang server. Periksa juga jam laptop.",
        "Use exactly the https:// address the district admin gave, and enrol from the office network (another network may be intercepting). If the server's address changed or its certificate has expired, the admin runs 'ikd-field server tls init' again on the server and restarts the server. Check the laptop's clock too."
    ))
    .details(serde_json::json!({
        "server": base,
        "certificate": true,
        "office_ca": true,
        "reason": why,
        "token_spent": false,
    }))
}

fn replayed(base: &str) -> AppError {
    AppError::other(tr!(
        "Jawaban dari {base} adalah salinan lama dari server yang diharapkan, bukan jawaban baru: jaringan ini mungkin disadap. Pendaftaran dibatalkan; token belum terpakai dan tidak ada yang diubah.",
        "The answer from {base} is an old copy of the expected server's answer, not a fresh one: this network may be intercepted. Enrolment cancelled; the token is not spent and nothing was changed."
    ))
    .hint(tr!(
        "Daftar dari jaringan kantor, dan beri tahu admin Dinas.",
        "Enrol from the office network, and tell the district admin."
    ))
    .details(serde_json::json!({ "server": base, "replayed": true, "token_spent": false }))
}

fn needs_server_id(base: &str, why: &str) -> AppError {
    AppError::usage(tr!(
        "Server {base} memakai sertifikat sendiri yang belum dikenal laptop ini. Untuk memercayainya, pendaftaran butuh ID server dari admin Dinas. Token belum terpakai; tidak ada yang diubah.",
        "The server {base} uses a certificate of its own that this laptop does not know yet. To trust it, enrolment needs the server id from the district admin. The token is not spent; nothing was changed."
    ))
    .hint(tr!(
        "Minta ID SERVER ke admin (tampil saat 'ikd-field server token'), lalu daftar lagi dengan --expect-server-id ID (di desk: isi kolom ID server).",
        "Ask the admin for the SERVER ID (shown by 'ikd-field server token'), then enrol again with --expect-server-id ID (in the desk: fill in the server id)."
    ))
    .details(serde_json::json!({
        "server": base,
        "certificate": true,
        "reason": why,
        "needs_server_id": true,
        "token_spent": false,
    }))
}

fn no_office_ca(base: &str, why: &str) -> AppError {
    AppError::new(
        Kind::Unreachable,
        tr!(
            "Koneksi aman ke {base} ditolak: {why}, dan server tidak menyerahkan sertifikat kantor yang ditandatanganinya. Token belum terpakai; perangkat belum terdaftar.",
            "The secure connection to {base} was refused: {why}, and the server hands out no office certificate signed by it. The token is not spent; the device is not enrolled."
        ),
    )
    .hint(tr!(
        "Minta admin menjalankan 'ikd-field server tls init' di server (versi terbaru), atau setel sync.ca_file ke berkas sertifikat dari admin Dinas.",
        "Ask the admin to run 'ikd-field server tls init' on the server (latest version), or set sync.ca_file to the certificate file from the district admin."
    ))
    .details(serde_json::json!({ "server": base, "certificate": true, "token_spent": false }))
}
