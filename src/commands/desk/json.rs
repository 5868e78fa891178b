//! What the desk's JSON endpoints share: reading a request body, answering, naming a desa.
use super::serve::{Req, Resp};
use crate::domain::region;
use crate::error::AppError;
use crate::tr;
use serde::{Deserialize, Serialize};

pub fn body<T: for<'de> Deserialize<'de>>(req: &Req) -> Result<T, AppError> {
    serde_json::from_slice(&req.body).map_err(|_| {
        AppError::invalid(tr!(
            "Isian formulir tidak terbaca; muat ulang halaman.",
            "The form could not be read; reload the page."
        ))
    })
}

pub fn ok(v: &impl Serialize) -> Result<Resp, AppError> {
    Ok(Resp::json(200, v))
}

/// A desa for the page: code, name and where it is.
#[derive(Serialize, Clone)]
pub struct Desa {
    pub code: String,
    pub name: String,
    pub place: String,
}

pub fn desa_of(code: &str) -> Option<Desa> {
    region::village(code).map(|r| Desa {
        code: r.code.clone(),
        name: r.name.clone(),
        place: region::place(&r.code),
    })
}
