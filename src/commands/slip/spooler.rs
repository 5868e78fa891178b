//! Windows: raw ESC/POS to a printer by the name Windows lists it under ("POS-58"), through the
//! print spooler as a RAW job (OpenPrinter, StartDocPrinter with the RAW datatype, WritePrinter),
//! so the bytes reach the printer as they are, past its driver. A `printer` setting that is a
//! path instead — a COM port (`\\.\COM3`), a shared printer (`\\localhost\POS-58`), a file — is
//! written as a file, as `/dev/usb/lp0` is on Linux.
use std::ffi::OsStr;
use std::io;
use std::os::windows::ffi::OsStrExt;
use std::path::Path;
use windows_sys::Win32::Foundation::ERROR_INVALID_PRINTER_NAME;
use windows_sys::Win32::Graphics::Printing::{
    ClosePrinter, DOC_INFO_1W, EndDocPrinter, EndPagePrinter, OpenPrinterW, PRINTER_HANDLE,
    StartDocPrinterW, StartPagePrinter, WritePrinter,
};

/// True when `device` is a printer's name for the spooler: no path separator or drive colon, and
/// not one of the DOS device names (`COM1`, `LPT1`, `PRN`) that open as files.
pub fn is_printer_name(device: &Path) -> bool {
    let s = device.as_os_str().to_string_lossy();
    if s.is_empty() || s.contains(['\\', '/', ':']) {
        return false;
    }
    let u = s.to_ascii_uppercase();
    let port = (u.starts_with("COM") || u.starts_with("LPT"))
        && u.len() == 4
        && u.as_bytes()[3].is_ascii_digit();
    !(port || u == "PRN" || u == "AUX")
}

/// True when the spooler's answer was that no printer has this name.
pub fn is_unknown_printer(e: &io::Error) -> bool {
    e.raw_os_error() == Some(ERROR_INVALID_PRINTER_NAME as i32)
}

/// Sends `bytes` to the printer `name` as one RAW print job.
pub fn write(name: &OsStr, bytes: &[u8]) -> io::Result<()> {
    let name = wide_nul(name)?;
    let mut doc_name = wide_nul(OsStr::new("ikd-field slip"))?;
    let mut datatype = wide_nul(OsStr::new("RAW"))?;
    let mut h = PRINTER_HANDLE::default();
    // SAFETY: `name` is NUL-terminated UTF-16; `h` receives the handle, closed below.
    if unsafe { OpenPrinterW(name.as_ptr(), &mut h, std::ptr::null()) } == 0 {
        return Err(io::Error::last_os_error());
    }
    let result = job(h, &mut doc_name, &mut datatype, bytes);
    // SAFETY: the handle OpenPrinterW gave, closed once.
    unsafe { ClosePrinter(h) };
    result
}

fn job(h: PRINTER_HANDLE, doc: &mut [u16], datatype: &mut [u16], bytes: &[u8]) -> io::Result<()> {
    let info = DOC_INFO_1W {
        pDocName: doc.as_mut_ptr(),
        pOutputFile: std::ptr::null_mut(),
        pDatatype: datatype.as_mut_ptr(),
    };
    // SAFETY: an open printer handle; `info`'s strings are NUL-terminated and outlive the call.
    if unsafe { StartDocPrinterW(h, 1, &info) } == 0 {
        return Err(io::Error::last_os_error());
    }
    let written = page(h, bytes);
    // SAFETY: ends the document started above, whatever happened to its page.
    let ended = unsafe { EndDocPrinter(h) } != 0;
    written?;
    if !ended {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn page(h: PRINTER_HANDLE, mut bytes: &[u8]) -> io::Result<()> {
    // SAFETY: an open printer handle with a document started.
    if unsafe { StartPagePrinter(h) } == 0 {
        return Err(io::Error::last_os_error());
    }
    while !bytes.is_empty() {
        let chunk = &bytes[..bytes.len().min(64 * 1024)];
        let mut n = 0u32;
        // SAFETY: `chunk` is readable for its length; `n` receives the count written.
        let ok = unsafe { WritePrinter(h, chunk.as_ptr().cast(), chunk.len() as u32, &mut n) };
        if ok == 0 || n == 0 {
            let e = io::Error::last_os_error();
            // SAFETY: closes the page started above.
            unsafe { EndPagePrinter(h) };
            return Err(e);
        }
        bytes = &bytes[n as usize..];
    }
    // SAFETY: closes the page started above.
    if unsafe { EndPagePrinter(h) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn wide_nul(s: &OsStr) -> io::Result<Vec<u16>> {
    let mut w: Vec<u16> = s.encode_wide().collect();
    if w.contains(&0) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "NUL in a name"));
    }
    w.push(0);
    Ok(w)
}
